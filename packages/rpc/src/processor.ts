import { Message, ZbusError } from '@zbus/protocol';
import { type BodyCodec, codecForContentType, jsonCodec, resolveCodec } from './codec.js';
import { type RpcProcessorOptions, resolveProcessorOptions } from './options.js';

/** A method as the processor lists it. */
export interface RpcMethodInfo {
  /** Module name; `''` is the default module. */
  module: string;
  method: string;
  /** Parameter names read from the function's source (best effort). */
  params: string[];
  /** Whether the method receives the raw request `Message` as its first argument. */
  rawRequest: boolean;
}

/** Options of {@link RpcProcessor.addModule}. */
export interface AddModuleOptions {
  /**
   * Methods that receive the request `Message` as their first argument, before the params.
   * @default []
   */
  rawRequest?: readonly string[];
  /**
   * Methods left out of the module.
   * @default []
   */
  exclude?: readonly string[];
}

/** The body of an RPC request (0.11 `rpc/Request.java`; `paramTypes` is accepted and ignored). */
export interface RpcRequestBody {
  module?: string;
  method: string;
  params?: unknown[];
}

/** The body of a status-600 reply. */
export interface RpcErrorBody {
  message: string;
  name: string;
  code?: string;
  stack?: string;
}

/** Status of a reply that carries a thrown error (0.10+, `rpc/RpcCodec.java`). */
export const RPC_ERROR_STATUS = 600;

type AnyFunction = (...args: unknown[]) => unknown;

interface MethodEntry {
  module: string;
  name: string;
  fn: AnyFunction;
  target: object;
  rawRequest: boolean;
}

const kRawRequest = Symbol('zbus.rpc.rawRequest');

/**
 * Marks a function so the processor passes it the request `Message` first, then the params.
 * For methods of class instances, prefer the `rawRequest` option of `addModule`.
 */
export function rawRequest<F extends (req: Message, ...params: never[]) => unknown>(fn: F): F {
  Object.defineProperty(fn, kRawRequest, { value: true });
  return fn;
}

/**
 * Serves RPC requests: finds `module`/`method`, calls it with `params`, and builds the reply message
 * (status 200 + encoded result, or status 600 + `{message, code, name, stack?}`).
 *
 * Transport-agnostic: `process(request)` takes the request as delivered (after the consumer restored
 * `id`, url and method) and returns the reply; routing it back is the caller's job.
 */
export class RpcProcessor {
  readonly options: Readonly<Required<RpcProcessorOptions>>;
  readonly #methods = new Map<string, Map<string, MethodEntry>>();
  readonly #codecs: BodyCodec[];

  constructor(options: RpcProcessorOptions = {}) {
    this.options = resolveProcessorOptions(options);
    this.#codecs = [...this.options.codecs];
  }

  /** Reads (and answers) requests in `codec` too, besides JSON and the `codecs` option. */
  addCodec(codec: BodyCodec): this {
    const c = resolveCodec(codec);
    if (c !== jsonCodec && !this.#codecs.includes(c)) this.#codecs.push(c);
    return this;
  }

  /**
   * Adds every function of `impl` (own properties and prototype methods of class instances, up to but
   * excluding `Object.prototype`) under module `name`. `''` is the default module. Methods are called
   * with `this` = `impl`. Adding to an existing module adds or replaces methods.
   */
  addModule(name: string, impl: object, options: AddModuleOptions = {}): this {
    if (typeof name !== 'string')
      throw new ZbusError('ZBUS_ERR_INVALID_ARGUMENT', 'module name must be a string');
    if (impl === null || (typeof impl !== 'object' && typeof impl !== 'function')) {
      throw new ZbusError('ZBUS_ERR_INVALID_ARGUMENT', `module ${JSON.stringify(name)} must be an object`);
    }
    const exclude = new Set(options.exclude ?? []);
    const raw = new Set(options.rawRequest ?? []);
    const table = this.#module(name);
    for (const key of functionNames(impl)) {
      if (exclude.has(key)) continue;
      const fn = (impl as Record<string, unknown>)[key] as AnyFunction;
      table.set(key, {
        module: name,
        name: key,
        fn,
        target: impl,
        rawRequest: raw.has(key) || (fn as unknown as Record<symbol, unknown>)[kRawRequest] === true,
      });
    }
    return this;
  }

  /** Adds one function as `module`/`method`. */
  addMethod(
    module: string,
    method: string,
    fn: (...args: never[]) => unknown,
    options: { rawRequest?: boolean } = {},
  ): this {
    if (typeof fn !== 'function') {
      throw new ZbusError('ZBUS_ERR_INVALID_ARGUMENT', `method ${module}:${method} must be a function`);
    }
    const f = fn as unknown as AnyFunction;
    this.#module(module).set(method, {
      module,
      name: method,
      fn: f,
      target: {},
      rawRequest:
        options.rawRequest === true || (f as unknown as Record<symbol, unknown>)[kRawRequest] === true,
    });
    return this;
  }

  /** Removes a module; returns whether it existed. */
  removeModule(name: string): boolean {
    return this.#methods.delete(name);
  }

  /** Every registered method, by module then method name. */
  methods(): RpcMethodInfo[] {
    const out: RpcMethodInfo[] = [];
    for (const [module, table] of [...this.#methods].sort(byKey)) {
      for (const [method, entry] of [...table].sort(byKey)) {
        out.push({ module, method, params: paramNames(entry.fn), rawRequest: entry.rawRequest });
      }
    }
    return out;
  }

  /** Whether `module`/`method` resolves (with the same rules as `process`). */
  has(module: string, method: string): boolean {
    return this.#find(module, method) !== undefined;
  }

  /**
   * Runs one request and returns the reply. Never throws: every failure becomes a status-600 reply.
   * The reply has no `id`/`cmd`/`recver`; the caller adds what routing needs.
   */
  async process(req: Message): Promise<Message> {
    let codec = jsonCodec;
    let call: { module: string; method: string; params: unknown[] };
    try {
      codec = codecForContentType(req.contentType, this.#codecs);
      call = this.#parse(req, codec);
    } catch (err) {
      return this.#errorReply(err, codec);
    }
    const entry = this.#find(call.module, call.method);
    if (entry === undefined) {
      if (call.method === '' && this.options.methodList) {
        return this.#valueReply(this.methods(), codec);
      }
      const label = call.module === '' ? call.method : `${call.module}:${call.method}`;
      return this.#errorReply(new ZbusError('ZBUS_ERR_NOT_FOUND', `${label} Not Found`), codec);
    }
    try {
      const args = entry.rawRequest ? [req, ...call.params] : call.params;
      const result = await entry.fn.apply(entry.target, args);
      if (result instanceof Message) {
        if (result.status === undefined) result.status = 200;
        return result;
      }
      return this.#valueReply(result, codec);
    } catch (err) {
      return this.#errorReply(err, codec);
    }
  }

  #module(name: string): Map<string, MethodEntry> {
    let table = this.#methods.get(name);
    if (table === undefined) {
      table = new Map();
      this.#methods.set(name, table);
    }
    return table;
  }

  #find(module: string, method: string): MethodEntry | undefined {
    const hit = this.#methods.get(module)?.get(method);
    if (hit !== undefined) return hit;
    // 0.11 callers that leave `module` out end up asking for module `index` (0.11 RpcProcessor); serve
    // them from the default module.
    if (module === 'index') return this.#methods.get('')?.get(method);
    return undefined;
  }

  #parse(req: Message, codec: BodyCodec): { module: string; method: string; params: unknown[] } {
    const path = urlPath(req.url);
    const fromUrl = path !== '/' && path !== '';
    if (req.body.length > 0) {
      let decoded: unknown;
      try {
        decoded = codec.decode(req.body);
      } catch (err) {
        throw new ZbusError('ZBUS_ERR_INVALID_ARGUMENT', `rpc request body is not valid ${codec.name}`, {
          cause: err,
        });
      }
      if (decoded === null || typeof decoded !== 'object' || Array.isArray(decoded)) {
        throw new ZbusError(
          'ZBUS_ERR_INVALID_ARGUMENT',
          'rpc request body must be an object {module, method, params}',
        );
      }
      const body = decoded as Record<string, unknown>;
      const module = body.module === undefined || body.module === null ? '' : String(body.module);
      const method = body.method === undefined || body.method === null ? '' : String(body.method);
      let params: unknown[];
      if (body.params === undefined || body.params === null) params = [];
      else if (Array.isArray(body.params)) params = body.params;
      else params = [body.params];
      // The broker builds the body from `/<topic>/<module>/<method>/<p>...`; those params are strings.
      if (fromUrl && this.options.coerceUrlParams) params = params.map(coerceUrlParam);
      return { module, method, params };
    }
    if (fromUrl) {
      // A raw request that kept its URL: `/<topic>/<module>/<method>/<p>...`.
      const segments = path.split('/').slice(1).map(safeDecode);
      const topic = req.topic;
      if (topic !== undefined && segments[0]?.toLowerCase() === topic.toLowerCase()) segments.shift();
      const [module = '', method = '', ...rest] = segments;
      const params = this.options.coerceUrlParams ? rest.map(coerceUrlParam) : rest;
      return { module, method, params };
    }
    return { module: '', method: '', params: [] };
  }

  #valueReply(value: unknown, codec: BodyCodec): Message {
    const res = new Message();
    res.status = 200;
    res.set('content-type', codec.contentType);
    res.setBody(codec.encode(value));
    return res;
  }

  #errorReply(err: unknown, codec: BodyCodec): Message {
    const res = new Message();
    res.status = RPC_ERROR_STATUS;
    res.set('content-type', codec.contentType);
    res.setBody(codec.encode(errorBody(err, this.options.stackTrace)));
    return res;
  }
}

/** The `{message, name, code?, stack?}` body for a thrown value. */
export function errorBody(err: unknown, stackTrace: boolean): RpcErrorBody {
  if (err instanceof Error) {
    const body: RpcErrorBody = { message: err.message, name: err.name };
    const code = (err as { code?: unknown }).code;
    if (typeof code === 'string' || typeof code === 'number') body.code = String(code);
    if (stackTrace && typeof err.stack === 'string') body.stack = err.stack;
    return body;
  }
  if (err !== null && typeof err === 'object') {
    const o = err as Record<string, unknown>;
    const body: RpcErrorBody = {
      message: typeof o.message === 'string' ? o.message : safeStringify(err),
      name: typeof o.name === 'string' ? o.name : 'Error',
    };
    if (typeof o.code === 'string' || typeof o.code === 'number') body.code = String(o.code);
    return body;
  }
  return { message: String(err), name: 'Error' };
}

function safeStringify(v: unknown): string {
  try {
    return JSON.stringify(v);
  } catch {
    return String(v);
  }
}

function byKey<T>(a: [string, T], b: [string, T]): number {
  return a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0;
}

function urlPath(url: string | undefined): string {
  if (!url) return '/';
  const q = url.indexOf('?');
  return q === -1 ? url : url.slice(0, q);
}

function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

const NUMBER_RE = /^-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?$/;

/**
 * Params that come from a URL are strings. JavaScript has no parameter types to convert them by (0.11 Java
 * converts by the method's types), so numbers, `true`, `false` and `null` are read as JSON and everything
 * else stays a string. Turn this off with `coerceUrlParams: false`.
 */
export function coerceUrlParam(p: unknown): unknown {
  if (typeof p !== 'string') return p;
  if (p === 'true') return true;
  if (p === 'false') return false;
  if (p === 'null') return null;
  if (NUMBER_RE.test(p)) {
    const n = Number(p);
    if (Number.isFinite(n) && (Number.isSafeInteger(n) || !Number.isInteger(n))) return n;
  }
  return p;
}

/** Names of every callable member of `obj`: own properties, then prototype methods up to Object.prototype. */
function functionNames(obj: object): string[] {
  const names = new Set<string>();
  let o: object | null = obj;
  while (o !== null && o !== Object.prototype && o !== Function.prototype) {
    for (const key of Object.getOwnPropertyNames(o)) {
      if (key === 'constructor' || names.has(key)) continue;
      const desc = Object.getOwnPropertyDescriptor(o, key);
      // Getters are not methods; reading them could run user code.
      if (desc && typeof desc.value === 'function') names.add(key);
    }
    o = Object.getPrototypeOf(o) as object | null;
  }
  return [...names];
}

function paramNames(fn: AnyFunction): string[] {
  const src = Function.prototype.toString.call(fn);
  const m = /^[^(]*\(([^)]*)\)/.exec(src) ?? /^\s*(?:async\s+)?([A-Za-z_$][\w$]*)\s*=>/.exec(src);
  if (!m?.[1]) return [];
  return m[1]
    .split(',')
    .map((s) =>
      s
        .replace(/\/\*.*?\*\//g, '')
        .replace(/=.*$/s, '')
        .trim(),
    )
    .filter((s) => s.length > 0);
}
