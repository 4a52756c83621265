import { describe, expect, it, vi } from 'vitest';
import {
  Cmd,
  COMMANDS,
  Message,
  parseUrl,
  resolveCommand,
  rpcRequestFromPath,
  rpcRequestFromUrl,
  tokenFromCookie,
} from '../src/index.js';
import { text } from './helpers.js';

const req = (url: string, headers?: Record<string, string>, body?: string): Message =>
  new Message({ url, ...(headers ? { headers } : {}), ...(body !== undefined ? { body } : {}) });

describe('resolveCommand: cmd header', () => {
  it('uses the cmd header and does not parse the URL', () => {
    const m = req('/declare/Other?topic=x&cmd=remove', { cmd: 'Produce', topic: 'MyTopic' });
    const r = resolveCommand(m);
    expect(r).toEqual({ cmd: 'produce', form: 'header', path: [], query: {} });
    expect({ ...m.headers }).toEqual({ cmd: 'produce', topic: 'MyTopic' });
  });

  it('lower-cases and trims a cmd header in any spelling', () => {
    for (const [sent, cmd] of [
      ['ack', 'ack'],
      [' ack ', 'ack'],
      ['acK', 'ack'],
      ['ÄCK', 'äck'],
    ]) {
      const m = req('/', { cmd: sent as string });
      expect(resolveCommand(m).cmd).toBe(cmd);
      expect(m.headers.cmd).toBe(cmd);
    }
  });
});

describe('resolveCommand: 0.11 form /<topic>[/<group>]?cmd=', () => {
  it('reads /mytopic/group1/?cmd=consume&&token=xxxyyy', () => {
    const m = req('/mytopic/group1/?cmd=consume&&token=xxxyyy');
    const r = resolveCommand(m);
    expect(r.cmd).toBe('consume');
    expect(r.form).toBe('0.11');
    expect(r.path).toEqual(['mytopic', 'group1', '']);
    expect(r.query).toEqual({ cmd: 'consume', token: 'xxxyyy' });
    expect({ ...m.headers }).toEqual({
      cmd: 'consume',
      token: 'xxxyyy',
      topic: 'mytopic',
      consume_group: 'group1',
    });
  });

  it('reads /MyTopic?cmd=produce', () => {
    const m = req('/MyTopic?cmd=produce');
    expect(resolveCommand(m).cmd).toBe('produce');
    expect(m.topic).toBe('MyTopic');
  });

  it('makes a URL with a path and no cmd a produce', () => {
    const m = req('/MyTopic', {}, 'hi');
    expect(resolveCommand(m)).toMatchObject({ cmd: 'produce', form: '0.11' });
    expect(m.topic).toBe('MyTopic');
  });

  it('makes / a home request', () => {
    const m = req('/');
    expect(resolveCommand(m)).toMatchObject({ cmd: 'home', path: [] });
    expect(m.topic).toBeUndefined();
  });

  it('takes the command from the query on /?cmd=server', () => {
    expect(resolveCommand(req('/?cmd=server')).cmd).toBe('server');
  });

  it('lower-cases the command', () => {
    expect(resolveCommand(req('/t?cmd=CONSUME')).cmd).toBe('consume');
  });

  it('takes the group only for consume, declare, query, remove, empty and the ack family', () => {
    for (const cmd of [
      'consume',
      'declare',
      'query',
      'remove',
      'empty',
      'unconsume',
      'ack',
      'nack',
      'touch',
    ]) {
      const m = req(`/t/g?cmd=${cmd}`);
      resolveCommand(m);
      expect(m.consumeGroup, cmd).toBe('g');
    }
    const p = req('/t/g?cmd=produce');
    resolveCommand(p);
    expect(p.consumeGroup).toBeUndefined();
  });

  it('merges query values only where the header is absent (headers win)', () => {
    const m = req('/UrlTopic/g?cmd=consume&topic=QueryTopic&token=q&tag=a', {
      token: 'h',
      topic: 'HeaderTopic',
    });
    resolveCommand(m);
    expect(m.token).toBe('h');
    expect(m.topic).toBe('HeaderTopic');
    expect(m.tag).toBe('a');
  });

  it('prefers a topic from the query over the path', () => {
    const m = req('/PathTopic?cmd=produce&topic=QueryTopic');
    resolveCommand(m);
    expect(m.topic).toBe('QueryTopic');
  });

  it('URL-decodes query values and path segments', () => {
    const m = req('/My%20Topic/g%2F1?cmd=consume&tag=a%2Bb&id=%E4%BB%B7');
    const r = resolveCommand(m);
    expect(r.path).toEqual(['My Topic', 'g/1']);
    expect([m.topic, m.consumeGroup, m.tag, m.id]).toEqual(['My Topic', 'g/1', 'a+b', '价']);
  });

  it('keeps a malformed escape as sent', () => {
    const m = req('/t?tag=%E4%ZZ');
    resolveCommand(m);
    expect(m.tag).toBe('%E4%ZZ');
  });

  it('skips query keys that cannot be header names', () => {
    const m = req('/t?a%0D%0Ab=1&ok=2&=3');
    resolveCommand(m);
    expect({ ...m.headers }).toEqual({ ok: '2', cmd: 'produce', topic: 't' });
  });

  it('puts URL values into headers on one line (CR, LF and NUL as spaces) but keeps a ?body= as sent', () => {
    const m = req('/t/g?cmd=consume&a=1%0D%0Ab:%20c&n=%00&body=x%0Ay');
    resolveCommand(m);
    expect([m.topic, m.consumeGroup, m.headers.a, m.headers.n]).toEqual(['t', 'g', '1  b: c', ' ']);
    expect(text(m.body)).toBe('x\ny');
    const withBody = req('/t?body=x%0Ay');
    withBody.body = new TextEncoder().encode('own');
    resolveCommand(withBody);
    expect(withBody.headers.body).toBe('x y');
  });

  it('refuses a topic or group name with CR, LF or NUL from the path or the query, rather than change it', () => {
    for (const url of [
      '/a%00b?cmd=declare',
      '/t%0Ax',
      '/t/g%0D1?cmd=consume',
      '/?cmd=produce&topic=a%00b',
      '/t?cmd=consume&consume_group=g%0A',
    ]) {
      expect(() => resolveCommand(req(url)), url).toThrow(
        expect.objectContaining({ code: 'ZBUS_ERR_BAD_NAME' }),
      );
    }
  });

  it('uses ?body= as the body of a message without one (0.8)', () => {
    const m = req('/t?body=hello%20world');
    resolveCommand(m);
    expect(text(m.body)).toBe('hello world');
    expect(m.headers.body).toBeUndefined();
  });

  it('ignores a fragment', () => {
    expect(resolveCommand(req('/t?cmd=query#x')).cmd).toBe('query');
  });
});

describe('resolveCommand: 0.8 form /<cmd>/<topic>[/<group>]', () => {
  it('reads /produce/MyTopic', () => {
    const m = req('/produce/MyTopic', {}, 'x');
    expect(resolveCommand(m)).toMatchObject({ cmd: 'produce', form: '0.8', path: ['produce', 'MyTopic'] });
    expect(m.topic).toBe('MyTopic');
  });

  it('reads /consume/MyTopic/group1', () => {
    const m = req('/consume/MyTopic/group1');
    resolveCommand(m);
    expect([m.cmd, m.topic, m.consumeGroup]).toEqual(['consume', 'MyTopic', 'group1']);
  });

  it('reads /declare/MyTopic (the README example of 0.11)', () => {
    const m = req('/declare/MyTopic');
    expect(resolveCommand(m).cmd).toBe('declare');
    expect(m.topic).toBe('MyTopic');
  });

  it('reads /rpc/MyRpc/plus/1/2/?key1=val1&&key2=value2 as an rpc to topic MyRpc', () => {
    const m = req('/rpc/MyRpc/plus/1/2/?key1=val1&&key2=value2');
    const r = resolveCommand(m);
    expect(r).toMatchObject({ cmd: 'rpc', form: '0.8', query: { key1: 'val1', key2: 'value2' } });
    expect([m.topic, m.consumeGroup, m.headers.key1, m.headers.key2]).toEqual([
      'MyRpc',
      undefined,
      'val1',
      'value2',
    ]);
  });

  it('reads /track_sub, /server and /favicon.ico', () => {
    expect(resolveCommand(req('/track_sub')).cmd).toBe('track_sub');
    expect(resolveCommand(req('/server')).cmd).toBe('server');
    expect(resolveCommand(req('/favicon.ico')).cmd).toBe('favicon.ico');
  });

  it('matches the command name case-insensitively', () => {
    expect(resolveCommand(req('/Query/MyTopic'))).toMatchObject({ cmd: 'query', form: '0.8' });
  });

  it('lets the path command win over a cmd in the query', () => {
    expect(resolveCommand(req('/query/t?cmd=remove')).cmd).toBe('query');
  });

  it('knows every command name', () => {
    expect([...COMMANDS].sort()).toEqual(Object.values(Cmd).sort());
    expect(COMMANDS.has('track_pub')).toBe(true);
  });
});

describe('rpcRequestFromUrl', () => {
  it('reads /<topic>/<module>/<method>/<p1>/<p2>', () => {
    expect(rpcRequestFromUrl(req('/MyRpc/InterfaceExample/plus/1/2'))).toEqual({
      module: 'InterfaceExample',
      method: 'plus',
      params: ['1', '2'],
    });
  });

  it('keeps empty segments: /MyRpc//plus/1/2 calls plus on the default module', () => {
    expect(rpcRequestFromUrl(req('/MyRpc//plus/1/2'))).toEqual({
      module: '',
      method: 'plus',
      params: ['1', '2'],
    });
    expect(rpcRequestFromUrl(req('/MyRpc/m/echo//x'))).toEqual({
      module: 'm',
      method: 'echo',
      params: ['', 'x'],
    });
  });

  it('reads the 0.8 form /rpc/<topic>/<method>/<p...>?module=m', () => {
    expect(rpcRequestFromUrl(req('/rpc/MyRpc/plus/1/2?module=Calc'))).toEqual({
      module: 'Calc',
      method: 'plus',
      params: ['1', '2'],
    });
    expect(rpcRequestFromUrl(req('/rpc/MyRpc/plus/1/2/?key1=val1&&key2=value2'))).toEqual({
      module: '',
      method: 'plus',
      params: ['1', '2'],
    });
  });

  it('ignores one trailing slash and URL-decodes params', () => {
    expect(rpcRequestFromUrl(req('/MyRpc/m/echo/hello%20world/'))).toEqual({
      module: 'm',
      method: 'echo',
      params: ['hello world'],
    });
  });

  it('gives the default module and method for a bare topic', () => {
    expect(rpcRequestFromUrl(req('/MyRpc'))).toEqual({ module: '', method: '', params: [] });
  });

  it('is undefined when the URL names no topic', () => {
    expect(rpcRequestFromUrl(req('/'))).toBeUndefined();
    expect(rpcRequestFromUrl(req('/rpc'))).toBeUndefined();
  });

  it('reads a URL parsed already (rpcRequestFromPath), leaving the parsed path as it was', () => {
    for (const url of ['/MyRpc/m/echo/a/', '/rpc/MyRpc/plus/1/2/?module=Calc', '/MyRpc/', '/rpc/', '/']) {
      const { path, query } = parseUrl(url);
      const before = [...path];
      expect(rpcRequestFromPath(path, query)).toEqual(rpcRequestFromUrl(req(url)));
      expect(path).toEqual(before);
    }
  });
});

describe('parseUrl', () => {
  it("cuts the path into segments as split('/') does, with no split", () => {
    const urls = [
      '/',
      '',
      '/a',
      '/a/',
      '//',
      '/a//b',
      '/a/b/c?x=1',
      'a/b',
      '/%2F/x%20y',
      'http://h:1/p/q/',
      '///',
    ];
    const want = urls.map((u) => {
      let p = u.replace(/^http:\/\/[^/]*/, '').split('?')[0] as string;
      if (p.startsWith('/')) p = p.slice(1);
      return p === '' ? [] : p.split('/').map(decodeURIComponent);
    });
    const split = vi.spyOn(String.prototype, 'split');
    const got = urls.map((u) => parseUrl(u).path);
    const calls = split.mock.calls.length;
    split.mockRestore();
    expect(got).toEqual(want);
    expect(calls).toBe(0);
  });
});

describe('tokenFromCookie', () => {
  it('reads the token cookie', () => {
    expect(tokenFromCookie('a=1; token=abc%20d; b=2')).toBe('abc d');
    expect(tokenFromCookie('token="q"')).toBe('q');
  });
  it('is undefined without a token cookie', () => {
    expect(tokenFromCookie(undefined)).toBeUndefined();
    expect(tokenFromCookie('a=1; tokens=2')).toBeUndefined();
    expect(tokenFromCookie('a=1; __Host-token=tls%21')).toBe('tls!');
  });
});
