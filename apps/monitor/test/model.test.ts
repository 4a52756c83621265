// Rates and totals computed from successive ServerInfos (no browser).
import type { ServerInfo } from '@zbus/client-browser';
import { describe, expect, it } from 'vitest';
import { fmtBytes, fmtRate, groupLabels, topicLabels } from '../src/format.js';
import { HISTORY, Model, Ring } from '../src/model.js';

function info(
  topics: Record<string, { depth: number; groups?: Record<string, [number, number]> }>,
): ServerInfo {
  const topicTable: ServerInfo['topicTable'] = {};
  for (const [name, t] of Object.entries(topics)) {
    topicTable[name] = {
      serverAddress: { address: 'h:1', sslEnabled: false },
      serverVersion: '0.11.4',
      topicName: name,
      mask: 0,
      messageDepth: t.depth,
      consumerCount: 0,
      creator: '',
      createdTime: 1,
      lastUpdatedTime: 1,
      consumeGroupList: Object.entries(t.groups ?? {}).map(([g, [position, backlog]]) => ({
        topicName: name,
        groupName: g,
        mask: 0,
        messageCount: backlog,
        consumerCount: 0,
        consumerList: [],
        filter: '',
        creator: '',
        createdTime: 1,
        lastUpdatedTime: 1,
        position,
        deadLetterCount: g === 'dead' ? 2 : 0,
      })),
    };
  }
  return {
    serverAddress: { address: 'h:1', sslEnabled: false },
    serverVersion: '0.11.4',
    infoVersion: 1,
    trackerList: [],
    topicTable,
  };
}

describe('Model', () => {
  it('computes produce rate from messageDepth and consume rate from group positions', () => {
    const m = new Model();
    m.apply(info({ a: { depth: 100, groups: { g1: [10, 90], g2: [0, 100] } } }), 0);
    m.apply(info({ a: { depth: 300, groups: { g1: [110, 190], g2: [50, 250] } } }), 2000);
    const a = m.topics.get('a')!;
    expect(a.inRate).toBe(100); // 200 messages in 2 s
    expect(a.outRate).toBe(75); // (100 + 50) deliveries in 2 s
    expect(a.backlog).toBe(440);
    expect(a.inHist.size).toBe(1);
    expect(m.inRate).toBe(100);
  });

  it('keeps the baseline for samples closer than a second, and ignores new groups and emptied topics', () => {
    const m = new Model();
    m.apply(info({ a: { depth: 10, groups: { g1: [0, 10] } } }), 0);
    m.apply(info({ a: { depth: 20, groups: { g1: [5, 15] } } }), 300); // a push right after a poll
    const a = m.topics.get('a')!;
    expect(a.inHist.size).toBe(0);
    expect(a.info.messageDepth).toBe(20); // figures refresh anyway
    m.apply(info({ a: { depth: 30, groups: { g1: [10, 20], g2: [30, 0] } } }), 1000);
    expect(a.inRate).toBe(20); // (30 - 10) / 1 s, from the kept baseline
    expect(a.outRate).toBe(10); // g2 is new: no delta
    m.apply(info({ a: { depth: 0, groups: { g1: [0, 0] } } }), 2000); // emptied
    expect(a.inRate).toBe(0);
    expect(a.outRate).toBe(0);
  });

  it('adds and drops topics, and reports whether the set changed', () => {
    const m = new Model();
    expect(m.apply(info({ a: { depth: 0 } }), 0)).toBe(true);
    expect(m.apply(info({ a: { depth: 1 } }), 2000)).toBe(false);
    expect(m.apply(info({ b: { depth: 0 } }), 4000)).toBe(true);
    expect([...m.topics.keys()]).toEqual(['b']);
  });

  it('sums dead letters per topic', () => {
    const m = new Model();
    m.apply(info({ a: { depth: 5, groups: { dead: [5, 0] } } }), 0);
    expect(m.topics.get('a')!.dlq).toBe(2);
  });
});

describe('Ring', () => {
  it('keeps the newest values, oldest first', () => {
    const r = new Ring(3);
    for (const v of [1, 2, 3, 4, 5]) r.push(v);
    expect([r.at(0), r.at(1), r.at(2)]).toEqual([3, 4, 5]);
    expect(r.max()).toBe(5);
    expect(HISTORY).toBe(150);
  });
});

describe('formats', () => {
  it('labels masks and formats rates and sizes', () => {
    expect(topicLabels(3)).toEqual(['memory', 'rpc']);
    expect(topicLabels(0)).toEqual(['disk']);
    expect(groupLabels(64 | 32 | 16)).toEqual(['ack', 'exclusive', 'delete-on-exit']);
    expect([fmtRate(0), fmtRate(0.44), fmtRate(12.4), fmtRate(1234), fmtRate(56_789)]).toEqual([
      '0',
      '0.4',
      '12',
      '1.2k',
      '57k',
    ]);
    expect([fmtBytes(512), fmtBytes(2048), fmtBytes(5 * 1024 ** 3)]).toEqual(['512 B', '2.0 KiB', '5.0 GiB']);
  });
});
