import { describe, expect, it } from 'vitest';
import type { ServerInfo, TopicInfo, TrackerInfo } from '../src/index.js';
import { defaultSelectors } from '../src/index.js';
import { RouteState } from '../src/route-table.js';

function topic(name: string, consumerCount = 0, messageDepth = 0): TopicInfo {
  return {
    serverAddress: { address: '', sslEnabled: false },
    serverVersion: '0.11.4',
    topicName: name,
    mask: 0,
    messageDepth,
    consumerCount,
    consumeGroupList: [],
    creator: '',
    createdTime: 0,
    lastUpdatedTime: 0,
  };
}

function server(address: string, infoVersion: number, topics: TopicInfo[] = []): ServerInfo {
  return {
    serverAddress: { address, sslEnabled: false },
    serverVersion: '0.11.4',
    infoVersion,
    trackerList: [],
    topicTable: Object.fromEntries(topics.map((t) => [t.topicName, t])),
  };
}

function tracker(address: string, infoVersion: number, servers: ServerInfo[]): TrackerInfo {
  return {
    serverAddress: { address, sslEnabled: false },
    serverVersion: '0.11.4',
    infoVersion,
    serverTable: Object.fromEntries(servers.map((s) => [s.serverAddress.address, s])),
  };
}

describe('RouteState', () => {
  it('merges trackers, reports joins, and keeps a server listed by at least half of the live trackers', () => {
    const r = new RouteState();
    const a = server('a:1', 10);
    const b = server('b:1', 10);
    expect(r.update('t1', tracker('a:1', 1, [a, b]))).toEqual({
      joined: ['a:1', 'b:1'],
      left: [],
      changed: true,
    });
    // t2 lists only a: b still has 1 vote of 2 (half), kept.
    expect(r.update('t2', tracker('b:1', 1, [a])).left).toEqual([]);
    // t3 lists only a: b has 1 vote of 3 (< half), dropped.
    expect(r.update('t3', tracker('c:1', 1, [a]))).toMatchObject({ left: ['b:1'], joined: [] });
    expect([...r.servers.keys()]).toEqual(['a:1']);
  });

  it('takes a server info only with an infoVersion at least as high as the one it has', () => {
    const r = new RouteState();
    r.update('t1', tracker('a:1', 1, [server('a:1', 20, [topic('Orders')])]));
    r.update('t2', tracker('b:1', 1, [server('a:1', 19, [])]));
    expect(r.topic('orders').has('a:1')).toBe(true); // the older info (no topics) was ignored
    r.update('t2', tracker('b:1', 2, [server('a:1', 21, [])]));
    expect(r.topic('orders').size).toBe(0);
    // A stale push from a tracker (lower infoVersion than its last) changes nothing.
    expect(r.update('t2', tracker('b:1', 1, [])).changed).toBe(false);
  });

  it('drops a lost tracker votes, except the last live one (no news is not a death)', () => {
    const r = new RouteState();
    r.update('t1', tracker('a:1', 1, [server('a:1', 1), server('b:1', 1)]));
    r.update('t2', tracker('b:1', 1, [server('a:1', 1)]));
    r.update('t3', tracker('c:1', 1, [server('a:1', 1)]));
    expect(r.servers.has('b:1')).toBe(false);
    r.removeTracker('t3'); // b: 1 of 2 live trackers
    expect(r.servers.has('b:1')).toBe(true);
    r.removeTracker('t2');
    expect(r.removeTracker('t1')).toMatchObject({ changed: false, left: [] });
    expect([...r.servers.keys()].sort()).toEqual(['a:1', 'b:1']);
  });
});

describe('default selectors', () => {
  const table = (servers: ServerInfo[], down: string[] = []) => {
    const r = new RouteState((s) => !down.includes(s));
    r.update('t', tracker('x', 1, servers));
    return r;
  };

  it('produce: the servers with consumers take turns; those without come after', () => {
    const sel = defaultSelectors();
    const t = table([
      server('a:1', 1, [topic('q', 2, 100)]),
      server('b:1', 1, [topic('q', 1, 0)]),
      server('c:1', 1, [topic('q', 0, 0)]),
    ]);
    const firsts = [0, 1, 2, 3].map(() => sel.produce(t, 'q'));
    expect(firsts.map((l) => l[0])).toEqual(['a:1', 'b:1', 'a:1', 'b:1']);
    expect(firsts[0]).toEqual(['a:1', 'b:1', 'c:1']);
  });

  it('produce: without consumers the least depth wins; a topic on no server goes to a random one', () => {
    const sel = defaultSelectors(() => 0.99);
    const t = table([
      server('a:1', 1, [topic('q', 0, 5)]),
      server('b:1', 1, [topic('q', 0, 3)]),
      server('c:1', 1),
    ]);
    expect(sel.produce(t, 'q')[0]).toBe('b:1');
    expect(sel.produce(t, 'nowhere')[0]).toBe('c:1');
  });

  it('produce and admin skip servers whose connection is down while others are up', () => {
    const sel = defaultSelectors();
    const t = table([server('a:1', 1, [topic('q', 5)]), server('b:1', 1, [topic('q', 1)])], ['a:1']);
    expect(sel.produce(t, 'q')).toEqual(['b:1']);
    expect(sel.admin(t, undefined)).toEqual(['b:1']);
  });

  it('consume: every server holding the topic; every server when none does', () => {
    const sel = defaultSelectors();
    const t = table([server('a:1', 1, [topic('q')]), server('b:1', 1), server('c:1', 1, [topic('Q')])]);
    expect(sel.consume(t, 'q').sort()).toEqual(['a:1', 'c:1']);
    expect(sel.consume(t, 'other').sort()).toEqual(['a:1', 'b:1', 'c:1']);
  });
});
