import { describe, expect, it } from 'vitest';
import {
  decodeMessage,
  encodeMessage,
  messageFromObject,
  messageToObject,
  toCamelCase,
  toSnakeCase,
} from '../src/index.js';
import { text } from './helpers.js';

describe('camelCase <-> snake_case (zbus.js message objects)', () => {
  it('maps consumeGroup to consume_group and back', () => {
    expect(toSnakeCase('consumeGroup')).toBe('consume_group');
    expect(toSnakeCase('originId')).toBe('origin_id');
    expect(toSnakeCase('groupStartMsgid')).toBe('group_start_msgid');
    expect(toCamelCase('consume_group')).toBe('consumeGroup');
    expect(toCamelCase('origin_status')).toBe('originStatus');
    expect(toCamelCase('content-type')).toBe('content-type');
  });

  it('builds a message from an object: status/method/url/body special, other keys snake_case headers', () => {
    const m = messageFromObject({
      cmd: 'consume',
      topic: 'T',
      consumeGroup: 'g',
      url: '/x',
      method: 'POST',
      ack: false,
    });
    expect([m.method, m.url, m.status]).toEqual(['POST', '/x', undefined]);
    expect({ ...m.headers }).toEqual({ cmd: 'consume', topic: 'T', consume_group: 'g', ack: 'false' });
  });

  it('turns an object body into JSON with content-type application/json', () => {
    const m = messageFromObject({ body: { module: '', method: 'plus', params: [1, 2] } });
    expect(m.contentType).toBe('application/json');
    expect(m.json()).toEqual({ module: '', method: 'plus', params: [1, 2] });
  });

  it('keeps a string body as text and a byte body as bytes', () => {
    expect(text(messageFromObject({ body: 'hi' }).body)).toBe('hi');
    expect(Array.from(messageFromObject({ body: new Uint8Array([7]) }).body)).toEqual([7]);
    expect(Array.from(messageFromObject({ body: new Uint16Array([1]) }).body)).toHaveLength(2);
  });

  it('skips null and undefined header values', () => {
    expect({ ...messageFromObject({ tag: null, id: undefined, topic: 't' }).headers }).toEqual({
      topic: 't',
    });
  });

  it('turns a response into an object with camelCase keys and a parsed JSON body', () => {
    const m = messageFromObject({ status: 200, originId: 'm1', body: { a: 1 } });
    const o = messageToObject(decodeMessage(encodeMessage(m)));
    expect(o).toEqual({
      status: 200,
      originId: 'm1',
      'content-type': 'application/json',
      connection: 'Keep-Alive',
      body: { a: 1 },
    });
  });

  it('gives text/* bodies as strings and other bodies as bytes', () => {
    expect(messageToObject(messageFromObject({ body: 'x' })).body).toBe('x');
    const bin = messageToObject(
      messageFromObject({ 'content-type': 'application/octet-stream', body: new Uint8Array([1]) }),
    );
    expect(bin.body).toEqual(new Uint8Array([1]));
  });

  it('gives requests method and url, and no body key when the body is empty', () => {
    expect(messageToObject(messageFromObject({ url: '/t', cmd: 'query' }))).toEqual({
      method: 'GET',
      url: '/t',
      cmd: 'query',
    });
  });

  it('keeps a JSON body that does not parse as text', () => {
    expect(
      messageToObject(messageFromObject({ 'content-type': 'application/json', body: 'not json' })).body,
    ).toBe('not json');
  });
});
