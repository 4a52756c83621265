import { Message, RpcError, ZbusError } from '@zbus/protocol';
import { describe, expect, expectTypeOf, it } from 'vitest';
import { RpcInvoker, RpcProcessor } from '../src/index.js';
import { msgpackCodec } from '../src/msgpack.js';
import { LoopInvoker } from './helpers.js';

interface MathApi {
  plus(a: number, b: number): number;
  echo(s: string): Promise<string>;
  fail(): void;
  bytes(b: Uint8Array): Uint8Array;
  readonly version: string;
}

function service(): RpcProcessor {
  return new RpcProcessor({ codecs: [msgpackCodec] })
    .addModule('math', {
      plus: (a: number, b: number) => a + b,
      echo: async (s: string) => s,
      fail: () => {
        throw new TypeError('bad input 中文');
      },
      bytes: (b: Uint8Array) => b,
      nothing: () => undefined,
    })
    .addModule('', { hello: (name: string) => `hello ${name}` });
}

describe('RpcInvoker', () => {
  it('invokes method(...params) on its module and decodes the JSON result', async () => {
    const loop = new LoopInvoker(service());
    const rpc = new RpcInvoker(loop, { topic: 'MyRpc', module: 'math' });
    expect(await rpc.invoke('plus', 1, 2)).toBe(3);
    const sent = loop.sent[0]!.msg;
    expect(sent.cmd).toBe('produce');
    expect(sent.topic).toBe('MyRpc');
    expect(sent.get('ack')).toBe('false');
    expect(sent.contentType).toBe('application/json');
    expect(sent.json()).toEqual({ module: 'math', method: 'plus', params: [1, 2] });
  });

  it('invokes {module, method, params} and the default module', async () => {
    const rpc = new RpcInvoker(new LoopInvoker(service()), { topic: 'MyRpc' });
    expect(await rpc.invoke({ module: 'math', method: 'plus', params: [2, 3] })).toBe(5);
    expect(await rpc.invoke('hello', 'zbus')).toBe('hello zbus');
    expect(await rpc.invoke({ module: 'math', method: 'nothing' })).toBe(null);
  });

  it('gives a typed proxy of a module', async () => {
    const rpc = new RpcInvoker(new LoopInvoker(service()), { topic: 'MyRpc' });
    const math = rpc.proxy<MathApi>('math');
    expectTypeOf(math.plus).toEqualTypeOf<(a: number, b: number) => Promise<number>>();
    expectTypeOf(math.echo).toEqualTypeOf<(s: string) => Promise<string>>();
    // @ts-expect-error non-function members are not part of the proxy
    math.version;
    expect(await math.plus(40, 2)).toBe(42);
    expect(await math.echo('unicode ✓ 中文 🎉')).toBe('unicode ✓ 中文 🎉');
    // awaiting the proxy itself must not call a remote `then`
    expect(await Promise.resolve(math)).toBe(math);
  });

  it('turns a 600 reply into an RpcError with the remote message', async () => {
    const rpc = new RpcInvoker(new LoopInvoker(service()), { topic: 'MyRpc', module: 'math' });
    const err = await rpc.invoke('fail').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RpcError);
    expect(err).toBeInstanceOf(ZbusError);
    expect(err).toMatchObject({ code: 'ZBUS_ERR_RPC', status: 600, message: 'bad input 中文' });
    expect((err as RpcError).remote).toMatchObject({ name: 'TypeError', message: 'bad input 中文' });
  });

  it('turns a 503 no-responders reply into a typed error', async () => {
    const rpc = new RpcInvoker(new LoopInvoker(undefined), { topic: 'Nobody' });
    await expect(rpc.invoke('x')).rejects.toMatchObject({ code: 'ZBUS_ERR_NO_RESPONDERS', status: 503 });
  });

  it('passes default, per-call and per-proxy timeouts to the MessageInvoker', async () => {
    const loop = new LoopInvoker(service());
    const rpc = new RpcInvoker(loop, { topic: 'MyRpc', module: 'math', timeout: 1234 });
    await rpc.invoke('plus', 1, 1);
    await rpc.invoke({ method: 'plus', params: [1, 1], timeout: 50 });
    await rpc.proxy<MathApi>('math', { timeout: 77 }).plus(1, 1);
    expect(loop.sent.map((s) => s.options?.timeout)).toEqual([1234, 50, 77]);
    loop.delay = 100;
    await expect(rpc.invoke({ method: 'plus', params: [1, 1], timeout: 20 })).rejects.toMatchObject({
      code: 'ZBUS_ERR_TIMEOUT',
    });
  });

  it('sends msgpack when given the opt-in codec and reads binary results', async () => {
    const loop = new LoopInvoker(service());
    const rpc = new RpcInvoker(loop, { topic: 'MyRpc', module: 'math', codec: msgpackCodec, token: 't0k' });
    const bytes = new Uint8Array([0, 255, 1, 254]);
    const out = await rpc.invoke<Uint8Array>('bytes', bytes);
    expect(new Uint8Array(out)).toEqual(bytes);
    const sent = loop.sent[0]!.msg;
    expect(sent.contentType).toBe('application/x-msgpack');
    expect(sent.token).toBe('t0k');
    expect(msgpackCodec.decode(sent.body)).toMatchObject({ module: 'math', method: 'bytes' });
    const err = await rpc.invoke('fail').catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'ZBUS_ERR_RPC', message: 'bad input 中文' });
  });

  it('returns the raw reply with invokeRaw', async () => {
    const p = new RpcProcessor().addModule('web', {
      page: () => new Message({ status: 200, headers: { 'content-type': 'text/html' }, body: '<b>x</b>' }),
    });
    const rpc = new RpcInvoker(new LoopInvoker(p), { topic: 'MyRpc' });
    const res = await rpc.invokeRaw({ module: 'web', method: 'page' });
    expect(res.contentType).toBe('text/html');
    expect(res.bodyText()).toBe('<b>x</b>');
    // a text body that is not JSON stays text
    expect(await rpc.invoke({ module: 'web', method: 'page' })).toBe('<b>x</b>');
  });

  it('validates its options', () => {
    const loop = new LoopInvoker(undefined);
    expect(() => new RpcInvoker(loop, { topic: '' })).toThrow(/topic/);
    expect(() => new RpcInvoker(loop, { topic: 't', timeout: 0 })).toThrow(/timeout/);
    expect(() => new RpcInvoker(loop, { topic: 't', codec: 'xml' as 'json' })).toThrow(/codec/);
    // msgpack is opt-in: the old name says how to opt in
    expect(() => new RpcInvoker(loop, { topic: 't', codec: 'msgpack' as 'json' })).toThrow(
      "codec: the msgpack codec is opt-in: install msgpackr and pass msgpackCodec from '@zbus/rpc/msgpack'",
    );
    expect(() => new RpcInvoker({} as LoopInvoker, { topic: 't' })).toThrow(/MessageInvoker/);
  });
});
