// The typed proxy's types, checked by `tsc` over the tests (the typecheck step of `npm test`) and run by vitest.
import { describe, expect, expectTypeOf, it } from 'vitest';
import { RpcInvoker, RpcProcessor, type RpcProxy } from '../src/index.js';
import { LoopInvoker } from './helpers.js';

interface MathApi {
  plus(a: number, b: number): number;
  later(s: string): Promise<string>;
  version: string;
}

const rpc = new RpcInvoker(
  new LoopInvoker(
    new RpcProcessor().addModule('math', {
      plus: (a: number, b: number) => a + b,
      later: async (s: string) => s,
    }),
  ),
  { topic: 'MyRpc', module: 'math' },
);

describe('RpcInvoker.proxy types', () => {
  it('compiles without a type argument: any method, unknown result', async () => {
    const math = rpc.proxy('math');
    const sum = await math.plus?.(1, 2);
    expectTypeOf(sum).toEqualTypeOf<unknown>();
    expect(sum).toBe(3);
    // (this repository has noUncheckedIndexedAccess; a --strict app calls `proxy().plus(2, 2)` as it is, which
    // client-browser's standalone.test.ts typechecks)
    expect(await rpc.proxy().plus!(2, 2)).toBe(4);
  });

  it('with an interface: its methods, promised, and nothing else', async () => {
    const math = rpc.proxy<MathApi>('math');
    expectTypeOf(math.plus).toEqualTypeOf<(a: number, b: number) => Promise<number>>();
    expectTypeOf(math.later).toEqualTypeOf<(s: string) => Promise<string>>();
    expectTypeOf<RpcProxy<MathApi>>().not.toHaveProperty('version');
    expect(await math.plus(1, 2)).toBe(3);
  });
});
