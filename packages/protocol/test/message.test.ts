import { describe, expect, it } from 'vitest';
import { Header, Mask, Message, Status } from '../src/index.js';
import { bytes, text } from './helpers.js';

describe('Message', () => {
  it('defaults to GET / HTTP/1.1 with no headers and an empty body', () => {
    const m = new Message();
    expect([m.status, m.method, m.url, m.httpVersion, m.body.length]).toEqual([
      undefined,
      'GET',
      '/',
      '1.1',
      0,
    ]);
    expect(Object.keys(m.headers)).toEqual([]);
  });

  it('builds from an init object, lower-casing header names and encoding a string body', () => {
    const m = new Message({ status: 200, headers: { Topic: 'T', ID: '1' }, body: 'hé' });
    expect({ ...m.headers }).toEqual({ topic: 'T', id: '1' });
    expect(Array.from(m.body)).toEqual(Array.from(bytes('hé')));
  });

  it('has headers with no Object.prototype behind them', () => {
    const m = new Message();
    expect(m.headers.toString).toBeUndefined();
    expect('constructor' in m.headers).toBe(false);
    m.set('__proto__', 'x');
    expect(m.get('__proto__')).toBe('x');
    expect(Object.keys(m.headers)).toEqual(['__proto__']);
    expect(Object.getPrototypeOf(Object.getPrototypeOf(m.headers))).toBeNull();
  });

  it('gets headers case-insensitively, sets lower-case names, deletes with undefined or delete()', () => {
    const m = new Message();
    m.set('Consume_Group', 'g').set('offset', 5).set('ack', false);
    expect(m.get('CONSUME_GROUP')).toBe('g');
    expect({ ...m.headers }).toEqual({ consume_group: 'g', offset: '5', ack: 'false' });
    m.set('offset', undefined);
    m.delete('ACK');
    expect({ ...m.headers }).toEqual({ consume_group: 'g' });
  });

  it('has string accessors for every zbus string field', () => {
    const fields: [keyof Message, string][] = [
      ['cmd', Header.Cmd],
      ['topic', Header.Topic],
      ['consumeGroup', Header.ConsumeGroup],
      ['id', Header.Id],
      ['tag', Header.Tag],
      ['token', Header.Token],
      ['sender', Header.Sender],
      ['recver', Header.Recver],
      ['originId', Header.OriginId],
      ['originUrl', Header.OriginUrl],
      ['originMethod', Header.OriginMethod],
      ['contentType', Header.ContentType],
      ['encoding', Header.Encoding],
    ];
    for (const [prop, header] of fields) {
      const m = new Message() as unknown as Record<string, unknown> & Message;
      expect(m[prop], prop).toBeUndefined();
      m[prop as 'cmd'] = 'v';
      expect(m.headers[header], prop).toBe('v');
      m[prop as 'cmd'] = undefined;
      expect(m.headers[header], prop).toBeUndefined();
    }
  });

  it('has number accessors for offset, originStatus, retry and timestamp', () => {
    const m = new Message();
    expect([m.offset, m.originStatus, m.retry, m.timestamp]).toEqual([
      undefined,
      undefined,
      undefined,
      undefined,
    ]);
    m.offset = 42;
    m.originStatus = 404;
    m.retry = 1;
    m.timestamp = 1516345678901;
    expect({ ...m.headers }).toEqual({
      offset: '42',
      origin_status: '404',
      retry: '1',
      timestamp: '1516345678901',
    });
    expect([m.offset, m.originStatus, m.retry, m.timestamp]).toEqual([42, 404, 1, 1516345678901]);
    m.set('offset', 'not a number');
    expect(m.offset).toBeUndefined();
  });

  it('reads ack as true unless the header is 0 or false', () => {
    const m = new Message();
    expect(m.ack).toBe(true);
    for (const [v, want] of [
      ['0', false],
      ['false', false],
      ['FALSE', false],
      ['1', true],
      ['true', true],
    ] as const) {
      m.set('ack', v);
      expect(m.ack, v).toBe(want);
    }
    m.ack = false;
    expect(m.headers.ack).toBe('false');
    m.ack = undefined;
    expect(m.headers.ack).toBeUndefined();
  });

  it('reads the body as UTF-8 text, or in the charset of the encoding header', () => {
    expect(new Message({ body: '价格' }).bodyText()).toBe('价格');
    const latin = new Message({
      headers: { encoding: 'latin1' },
      body: new Uint8Array([0x63, 0x61, 0x66, 0xe9]),
    });
    expect(latin.bodyText()).toBe('café');
    const unknown = new Message({ headers: { encoding: 'no-such-charset' }, body: 'ok' });
    expect(unknown.bodyText()).toBe('ok');
  });

  it('parses a JSON body', () => {
    expect(new Message({ body: '{"a":[1,2]}' }).json<{ a: number[] }>()).toEqual({ a: [1, 2] });
  });

  it('sets a string body as text/plain unless a content-type is set', () => {
    const m = new Message().setBody('hi');
    expect([text(m.body), m.contentType]).toEqual(['hi', 'text/plain']);
    const h = new Message({ headers: { 'content-type': 'text/html' } }).setBody('<b>');
    expect(h.contentType).toBe('text/html');
  });

  it('sets an object body as JSON with content-type application/json', () => {
    const m = new Message({ headers: { 'content-type': 'text/plain' } }).setBody({
      module: '',
      method: 'plus',
      params: [1],
    });
    expect(m.contentType).toBe('application/json');
    expect(m.json()).toEqual({ module: '', method: 'plus', params: [1] });
  });

  it('sets a byte body as given', () => {
    const b = new Uint8Array([1, 2]);
    const m = new Message().setBody(b);
    expect(m.body).toBe(b);
    expect(m.contentType).toBeUndefined();
  });

  it('clones with its own headers', () => {
    const m = new Message({ status: 200, headers: { id: '1' }, body: 'x' });
    const c = m.clone();
    c.id = '2';
    expect([m.id, c.id, c.status, text(c.body)]).toEqual(['1', '2', 200, 'x']);
  });
});

describe('constants', () => {
  it('numbers the masks as 0.11 does', () => {
    expect(Mask).toEqual({
      Disk: 0,
      Memory: 1,
      Rpc: 2,
      Proxy: 4,
      Pause: 8,
      Exclusive: 16,
      DeleteOnExit: 32,
      AckRequired: 64,
    });
  });
  it('spells header names as 0.11 does', () => {
    expect([Header.ConsumeGroup, Header.RemoteAddr, Header.OriginId, Header.GroupStartMsgid]).toEqual([
      'consume_group',
      'remote-addr',
      'origin_id',
      'group_start_msgid',
    ]);
    for (const v of Object.values(Header)) expect(v).toBe(v.toLowerCase());
  });
  it('has the RPC error status 600', () => {
    expect(Status.RpcError).toBe(600);
  });
});
