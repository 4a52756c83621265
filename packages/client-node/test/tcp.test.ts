import { describe, expect, it } from 'vitest';
import { parseHostPort } from '../src/index.js';

describe('parseHostPort', () => {
  it('reads host:port forms', () => {
    expect(parseHostPort('127.0.0.1:15555')).toEqual({ host: '127.0.0.1', port: 15555, tls: false });
    expect(parseHostPort('tcp://example.com')).toEqual({ host: 'example.com', port: 15555, tls: false });
    expect(parseHostPort('tls://[::1]:1234')).toEqual({ host: '::1', port: 1234, tls: true });
    expect(() => parseHostPort('h:99999')).toThrow(/bad address/);
  });
});
