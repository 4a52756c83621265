import { expect } from 'vitest';
import {
  type DecoderLimits,
  type Message,
  MessageDecoder,
  ZbusError,
  type ZbusErrorCode,
} from '../src/index.js';
import type { Fixture } from './fixtures/messages.js';

export const enc = new TextEncoder();
export const bytes = (s: string): Uint8Array => enc.encode(s);
export const text = (b: Uint8Array): string => new TextDecoder().decode(b);

/** Decodes `chunks` in order with a fresh decoder and returns every message. */
export function decodeChunks(chunks: Uint8Array[], limits?: DecoderLimits): Message[] {
  const out: Message[] = [];
  const d = new MessageDecoder((m) => {
    out.push(m);
  }, limits);
  for (const c of chunks) d.push(c);
  expect(d.bufferedBytes).toBe(0);
  return out;
}

/** `b` cut at the ascending byte positions `points` (views, no copies; empty pieces where points repeat). */
export function splitAt(b: Uint8Array, points: number[]): Uint8Array[] {
  const out: Uint8Array[] = [];
  let prev = 0;
  for (const p of points) {
    out.push(b.subarray(prev, p));
    prev = p;
  }
  out.push(b.subarray(prev));
  return out;
}

/** Plain object view of a message, for toEqual. */
export function view(m: Message): Record<string, unknown> {
  return {
    status: m.status,
    method: m.status === undefined ? m.method : undefined,
    url: m.status === undefined ? m.url : undefined,
    httpVersion: m.httpVersion,
    headers: { ...m.headers },
    body: text(m.body),
  };
}

export function expected(f: Fixture): Record<string, unknown> {
  const e = f.expect;
  return {
    status: e.status,
    method: e.status === undefined ? (e.method ?? 'GET') : undefined,
    url: e.status === undefined ? (e.url ?? '/') : undefined,
    httpVersion: e.httpVersion ?? '1.1',
    headers: e.headers,
    body: e.body,
  };
}

/** Runs `fn`, expects a ZbusError with `code` and `status`, and returns it. */
export function expectZbusError(
  fn: () => unknown,
  code: ZbusErrorCode,
  status: number,
  message?: RegExp,
): ZbusError {
  let caught: unknown;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  expect(caught, 'expected an error').toBeInstanceOf(ZbusError);
  const err = caught as ZbusError;
  expect(err.code).toBe(code);
  expect(err.status).toBe(status);
  if (message !== undefined) expect(err.message).toMatch(message);
  return err;
}
