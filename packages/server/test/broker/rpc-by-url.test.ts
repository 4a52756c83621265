// The JSON request of an RPC call by URL, built by hand for plain URL segments: the same text JSON.stringify gives.
import { describe, expect, it } from 'vitest';
import { plainJson } from '../../src/broker/rpc-by-url.js';

describe('plainJson', () => {
  it('gives what JSON.stringify gives for printable ASCII without quotes or backslashes', () => {
    for (const req of [
      { module: 'calc', method: 'plus', params: ['1', '2'] },
      { module: '', method: '', params: [] },
      { module: 'm', method: "it's ~ {x}: [y]/<z>", params: [' ', '', 'a b'] },
    ]) {
      expect(plainJson(req)).toBe(JSON.stringify(req));
    }
  });

  it('leaves to JSON.stringify any string it would escape', () => {
    for (const s of ['"', '\\', '\n', '\u0000', '\u007f', 'é', '\u{1f600}', '\ud800']) {
      expect(plainJson({ module: s, method: 'm', params: [] })).toBeUndefined();
      expect(plainJson({ module: 'm', method: s, params: [] })).toBeUndefined();
      expect(plainJson({ module: 'm', method: 'm', params: ['ok', s] })).toBeUndefined();
    }
  });
});
