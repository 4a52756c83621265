import { describe, expect, it } from 'vitest';
import {
  createError,
  ERROR_CODES,
  errorFromReply,
  isZbusError,
  LimitError,
  Message,
  ProtocolError,
  RpcError,
  STATUS_BY_CODE,
  ZbusError,
  type ZbusErrorCode,
} from '../src/index.js';

describe('errors', () => {
  it('maps every code to its status', () => {
    expect(STATUS_BY_CODE).toEqual({
      ZBUS_ERR_BAD_MESSAGE: 400,
      ZBUS_ERR_BAD_REQUEST: 400,
      ZBUS_ERR_BAD_NAME: 400,
      ZBUS_ERR_INVALID_ARGUMENT: 400,
      ZBUS_ERR_UNKNOWN_COMMAND: 400,
      ZBUS_ERR_EXCLUSIVE: 401,
      ZBUS_ERR_FORBIDDEN: 403,
      ZBUS_ERR_PROTECTED_MODE: 403,
      ZBUS_ERR_CROSS_SITE: 403,
      ZBUS_ERR_NOT_FOUND: 404,
      ZBUS_ERR_BODY_TOO_LARGE: 413,
      ZBUS_ERR_URL_TOO_LONG: 414,
      ZBUS_ERR_LIMIT: 429,
      ZBUS_ERR_HEADERS_TOO_LARGE: 431,
      ZBUS_ERR_INTERNAL: 500,
      ZBUS_ERR_STORE: 500,
      ZBUS_ERR_SEEK: 500,
      ZBUS_ERR_NOT_IMPLEMENTED: 501,
      ZBUS_ERR_BAD_GATEWAY: 502,
      ZBUS_ERR_NO_RESPONDERS: 503,
      ZBUS_ERR_CLOSED: 503,
      ZBUS_ERR_CONNECTION_CLOSED: 503,
      ZBUS_ERR_TIMEOUT: 504,
      ZBUS_ERR_NO_SPACE: 507,
      ZBUS_ERR_RPC: 600,
    });
    expect(ERROR_CODES).toEqual(Object.keys(STATUS_BY_CODE));
  });

  for (const code of Object.keys(STATUS_BY_CODE) as ZbusErrorCode[]) {
    it(`gives ${code} status ${STATUS_BY_CODE[code]} and survives a reply round trip`, () => {
      const e = createError(code, `${code.toLowerCase()} happened`);
      expect([e.code, e.status]).toEqual([code, STATUS_BY_CODE[code]]);
      expect(isZbusError(e)).toBe(true);
      const reply = new Message({ status: e.status, headers: { error_code: e.code }, body: e.message });
      const back = errorFromReply(reply);
      expect([back.code, back.status, back.message, back.name]).toEqual([
        e.code,
        e.status,
        e.message,
        e.name,
      ]);
    });
  }

  it('puts malformed-bytes errors in ProtocolError and limits in LimitError', () => {
    expect(createError('ZBUS_ERR_BAD_MESSAGE', 'x')).toBeInstanceOf(ProtocolError);
    for (const c of [
      'ZBUS_ERR_BODY_TOO_LARGE',
      'ZBUS_ERR_URL_TOO_LONG',
      'ZBUS_ERR_LIMIT',
      'ZBUS_ERR_HEADERS_TOO_LARGE',
    ] as const) {
      expect(createError(c, 'x')).toBeInstanceOf(LimitError);
    }
    const nf = createError('ZBUS_ERR_NOT_FOUND', 'x');
    expect(nf).toBeInstanceOf(ZbusError);
    expect(nf).not.toBeInstanceOf(ProtocolError);
    expect(nf).toBeInstanceOf(Error);
  });

  it('sets name, keeps the cause and lets the status be overridden', () => {
    const cause = new Error('disk');
    const e = new ZbusError('ZBUS_ERR_STORE', 'write failed', { cause, status: 507 });
    expect([e.name, e.cause, e.status]).toEqual(['ZbusError', cause, 507]);
    expect(new LimitError('ZBUS_ERR_LIMIT', 'x').name).toBe('LimitError');
  });

  it('matches instanceof by brand, so a second copy of the package still matches', () => {
    const kinds = Symbol.for('zbus.error.kinds');
    const foreign = Object.assign(new Error('x'), { code: 'ZBUS_ERR_BAD_MESSAGE', status: 400 });
    Object.defineProperty(foreign, kinds, { value: ['ProtocolError', 'ZbusError'] });
    expect(foreign).toBeInstanceOf(ProtocolError);
    expect(foreign).toBeInstanceOf(ZbusError);
    expect(foreign).not.toBeInstanceOf(LimitError);
    expect(isZbusError(new Error('plain'))).toBe(false);
    expect(isZbusError(null)).toBe(false);
  });

  it('turns a 600 reply into an RpcError with the remote JSON parsed', () => {
    const reply = new Message({
      status: 600,
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ message: 'divide by zero', name: 'ArithmeticError', stack: 's' }),
    });
    const e = errorFromReply(reply);
    expect(e).toBeInstanceOf(RpcError);
    expect([e.code, e.status, e.message]).toEqual(['ZBUS_ERR_RPC', 600, 'divide by zero']);
    expect((e as RpcError).remote).toMatchObject({ name: 'ArithmeticError', stack: 's' });
  });

  it('turns a 600 reply with a text body into an RpcError with that text', () => {
    const e = errorFromReply(new Message({ status: 600, body: 'boom' }));
    expect([e.code, e.message, (e as RpcError).remote]).toEqual(['ZBUS_ERR_RPC', 'boom', undefined]);
  });

  it('derives the code from the status when a 0.11 server sends no error_code', () => {
    const e = errorFromReply(new Message({ status: 404, body: '404: Topic(x) Not Found' }));
    expect([e.code, e.status, e.message]).toEqual(['ZBUS_ERR_NOT_FOUND', 404, '404: Topic(x) Not Found']);
    expect(errorFromReply(new Message({ status: 418 })).code).toBe('ZBUS_ERR_BAD_REQUEST');
    expect(errorFromReply(new Message({ status: 599 })).code).toBe('ZBUS_ERR_INTERNAL');
    expect(errorFromReply(new Message({ status: 403, headers: { error_code: 'NOT_A_CODE' } })).code).toBe(
      'ZBUS_ERR_FORBIDDEN',
    );
  });
});
