import { Message } from '@zbus/protocol';
import { describe, expect, it } from 'vitest';
import { coerceUrlParam, RpcProcessor, rawRequest } from '../src/index.js';
import { msgpackCodec } from '../src/msgpack.js';

function request(body: unknown, init: { url?: string; contentType?: string; topic?: string } = {}): Message {
  const m = new Message({
    headers: { topic: init.topic ?? 'MyRpc', 'content-type': init.contentType ?? 'application/json' },
  });
  if (init.url) m.url = init.url;
  if (body !== undefined) m.setBody(typeof body === 'string' ? body : JSON.stringify(body));
  return m;
}

class Calculator {
  base = 10;
  plus(a: number, b: number): number {
    return a + b;
  }
  addBase(a: number): number {
    return this.base + a;
  }
  async slow(a: number): Promise<number> {
    await new Promise((r) => setTimeout(r, 5));
    return a * 2;
  }
  fail(): never {
    const e = new Error('division by zero') as Error & { code: string };
    e.code = 'EDIV';
    throw e;
  }
}

class SciCalculator extends Calculator {
  square(a: number): number {
    return a * a;
  }
  override plus(a: number, b: number): number {
    return a + b + 0.5;
  }
}

describe('RpcProcessor', () => {
  it('calls a method of a plain object module and replies 200 with JSON', async () => {
    const p = new RpcProcessor().addModule('math', { plus: (a: number, b: number) => a + b });
    const res = await p.process(request({ module: 'math', method: 'plus', params: [1, 2] }));
    expect(res.status).toBe(200);
    expect(res.contentType).toBe('application/json');
    expect(res.bodyText()).toBe('3');
  });

  it('calls prototype methods of class instances with this bound, including inherited ones', async () => {
    const p = new RpcProcessor().addModule('calc', new SciCalculator());
    const call = async (method: string, params: unknown[]) =>
      (await p.process(request({ module: 'calc', method, params }))).json();
    expect(await call('addBase', [5])).toBe(15);
    expect(await call('square', [4])).toBe(16);
    expect(await call('plus', [1, 2])).toBe(3.5);
    expect(await call('slow', [21])).toBe(42);
    expect(p.methods().map((m) => m.method)).toEqual(['addBase', 'fail', 'plus', 'slow', 'square']);
  });

  it('uses the empty module as the default module, and serves 0.11 `index` callers from it', async () => {
    const p = new RpcProcessor().addModule('', { echo: (s: string) => s });
    expect((await p.process(request({ method: 'echo', params: ['hi'] }))).json()).toBe('hi');
    expect((await p.process(request({ module: '', method: 'echo', params: ['a'] }))).json()).toBe('a');
    expect((await p.process(request({ module: 'index', method: 'echo', params: ['b'] }))).json()).toBe('b');
  });

  it('replies 600 with {message, name, code} when a method throws, without the stack by default', async () => {
    const p = new RpcProcessor().addModule('calc', new Calculator());
    const res = await p.process(request({ module: 'calc', method: 'fail', params: [] }));
    expect(res.status).toBe(600);
    expect(res.json()).toEqual({ message: 'division by zero', name: 'Error', code: 'EDIV' });
  });

  it('adds the stack when stackTrace is on', async () => {
    const p = new RpcProcessor({ stackTrace: true }).addModule('calc', new Calculator());
    const body = (await p.process(request({ module: 'calc', method: 'fail' }))).json<{ stack: string }>();
    expect(body.stack).toContain('division by zero');
  });

  it('replies 600 naming module and method when the method is missing', async () => {
    const p = new RpcProcessor().addModule('math', { plus: () => 0 });
    const res = await p.process(request({ module: 'math', method: 'minus', params: [] }));
    expect(res.status).toBe(600);
    expect(res.json()).toMatchObject({ message: 'math:minus Not Found', code: 'ZBUS_ERR_NOT_FOUND' });
  });

  it('replies 600 on a body that is not JSON or not an object', async () => {
    const p = new RpcProcessor();
    const bad = await p.process(request('{nope'));
    expect(bad.status).toBe(600);
    expect(bad.json<{ code: string }>().code).toBe('ZBUS_ERR_INVALID_ARGUMENT');
    expect((await p.process(request([1, 2]))).status).toBe(600);
  });

  it('answers the method list for an empty method', async () => {
    const p = new RpcProcessor().addModule('math', { plus: (a: number, b: number) => a + b });
    const res = await p.process(request({ module: '', method: '' }));
    expect(res.status).toBe(200);
    expect(res.json()).toEqual([{ module: 'math', method: 'plus', params: ['a', 'b'], rawRequest: false }]);
  });

  it('treats missing params as [] and a non-array params as one param', async () => {
    const p = new RpcProcessor().addModule('', { count: (...a: unknown[]) => a.length });
    expect((await p.process(request({ method: 'count' }))).json()).toBe(0);
    expect((await p.process(request({ method: 'count', params: { x: 1 } }))).json()).toBe(1);
  });

  it('passes the raw request to rawRequest methods and sends a returned Message as the reply', async () => {
    const p = new RpcProcessor()
      .addModule(
        'web',
        {
          page(req: Message, name: string) {
            const res = new Message({ status: 201, headers: { 'content-type': 'text/html' } });
            res.setBody(`<h1>${name} ${req.topic}</h1>`);
            return res;
          },
        },
        { rawRequest: ['page'] },
      )
      .addMethod(
        'web',
        'who',
        rawRequest((req: Message) => req.get('x-user')),
      );
    const res = await p.process(request({ module: 'web', method: 'page', params: ['hi'] }));
    expect(res.status).toBe(201);
    expect(res.bodyText()).toBe('<h1>hi MyRpc</h1>');
    const req = request({ module: 'web', method: 'who' });
    req.set('x-user', 'ann');
    expect((await p.process(req)).json()).toBe('ann');
  });

  it('reads URL params as JSON scalars when the request came by URL (GET /MyRpc/math/plus/1/2)', async () => {
    const p = new RpcProcessor().addModule('math', {
      plus: (a: number, b: number) => a + b,
      id: (s: unknown) => s,
    });
    // the broker turned the URL into a body; the delivered request keeps the URL
    const res = await p.process(
      request({ module: 'math', method: 'plus', params: ['1', '2'] }, { url: '/MyRpc/math/plus/1/2' }),
    );
    expect(res.json()).toBe(3);
    // a raw request with only the URL
    const raw = await p.process(request(undefined, { url: '/MyRpc/math/id/h%C3%A9llo?x=1' }));
    expect(raw.json()).toBe('héllo');
    const off = new RpcProcessor({ coerceUrlParams: false }).addModule('math', {
      plus: (a: string, b: string) => a + b,
    });
    expect((await off.process(request(undefined, { url: '/MyRpc/math/plus/1/2' }))).json()).toBe('12');
  });

  it('coerces only JSON scalars among URL params', () => {
    expect(coerceUrlParam('12')).toBe(12);
    expect(coerceUrlParam('-1.5e3')).toBe(-1500);
    expect(coerceUrlParam('true')).toBe(true);
    expect(coerceUrlParam('null')).toBe(null);
    expect(coerceUrlParam('007')).toBe('007');
    expect(coerceUrlParam('12345678901234567890')).toBe('12345678901234567890');
    expect(coerceUrlParam('abc')).toBe('abc');
  });

  it('answers msgpack requests in msgpack when given the codec', async () => {
    const p = new RpcProcessor({ codecs: [msgpackCodec] }).addModule('', { echo: (v: unknown) => v });
    const req = new Message({ headers: { 'content-type': 'application/x-msgpack' } });
    const bytes = new Uint8Array([0, 1, 2, 255]);
    req.setBody(msgpackCodec.encode({ method: 'echo', params: [{ bytes, s: 'ünï' }] }));
    const res = await p.process(req);
    expect(res.contentType).toBe('application/x-msgpack');
    const out = msgpackCodec.decode(res.body) as { bytes: Uint8Array; s: string };
    expect(new Uint8Array(out.bytes)).toEqual(bytes);
    expect(out.s).toBe('ünï');
  });

  it('answers a msgpack request without the codec with an error that says how to add it', async () => {
    const p = new RpcProcessor().addModule('', { echo: (v: unknown) => v });
    const req = new Message({ headers: { 'content-type': 'application/x-msgpack' } });
    req.setBody(msgpackCodec.encode({ method: 'echo', params: [1] }));
    const res = await p.process(req);
    expect(res.status).toBe(600);
    expect(res.contentType).toBe('application/json');
    expect(res.json()).toMatchObject({
      code: 'ZBUS_ERR_BAD_MESSAGE',
      message:
        "cannot read a application/x-msgpack body: the msgpack codec is opt-in: install msgpackr and pass msgpackCodec from '@zbus/rpc/msgpack'",
    });
    // addCodec() opts in later (ServiceBootstrap.codec() uses it)
    p.addCodec(msgpackCodec);
    expect(msgpackCodec.decode((await p.process(req)).body)).toBe(1);
  });

  it('excludes methods, removes modules and rejects bad modules', async () => {
    const p = new RpcProcessor().addModule('m', { a: () => 1, b: () => 2 }, { exclude: ['b'] });
    expect(p.has('m', 'a')).toBe(true);
    expect(p.has('m', 'b')).toBe(false);
    expect(p.removeModule('m')).toBe(true);
    expect(p.has('m', 'a')).toBe(false);
    expect(() => p.addModule('x', null as unknown as object)).toThrow(/must be an object/);
  });

  it('does not call getters while listing a module', () => {
    let read = 0;
    const impl = {
      get expensive() {
        read++;
        return 1;
      },
      f: () => 1,
    };
    new RpcProcessor().addModule('', impl);
    expect(read).toBe(0);
  });
});
