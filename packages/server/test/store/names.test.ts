// Names at their limits: every file derived from a valid name fits the file system (255 bytes a name), a name
// that cannot is refused before anything is written, and errors never show the data directory.
import fs from 'node:fs';
import path from 'node:path';
import { ManualClock } from '@zbus/testkit';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { MAX_TOPIC_BYTES, nameKey } from '../../src/store/names.js';
import { STORE_MASK_ACK_REQUIRED } from '../../src/store/types.js';
import { enc, nextOf, open, tempDir, until } from './helpers.js';

afterEach(() => {
  vi.restoreAllMocks();
});

describe('names', () => {
  it('nameKey lower-cases ASCII and non-ASCII capitals, and keeps a lower-case name as it is', () => {
    expect(nameKey('orders-1.dlq')).toBe('orders-1.dlq');
    expect(nameKey('MyTopic')).toBe('mytopic');
    expect(nameKey('abcZ')).toBe('abcz');
    expect(nameKey('ÄBC')).toBe('äbc');
    expect(nameKey('İ')).toBe('i̇');
    expect(nameKey('')).toBe('');
  });

  it('a 251-byte topic works end to end: its default group, a 255-byte group, its 255-byte .dlq, removal', async () => {
    const dir = await tempDir();
    const clock = new ManualClock();
    const s1 = await open({ dataDir: dir, clock });
    const name = `T${'x'.repeat(MAX_TOPIC_BYTES - 1)}`;
    const t = await s1.declareTopic(name, { mask: 0 });
    await t.declareGroup(name, {}); // the default group is named as the topic
    const long = `G${'é'.repeat(127)}`; // 255 bytes
    const g = await t.declareGroup(long, { mask: STORE_MASK_ACK_REQUIRED, ackTimeoutMs: 10, maxDeliver: 1 });
    await t.append({ id: 'm', data: enc('v') });
    expect((await nextOf(t, g)).id).toBe('m');
    clock.advance(10);
    // The dead-letter topic, once its default group is declared too.
    const dlq = await until(() => {
      const d = s1.topic(`${name}.dlq`);
      return d?.group(d.name) ? d : undefined;
    });
    expect(Buffer.byteLength(dlq.name)).toBe(255);
    expect((await nextOf(dlq, dlq.group(dlq.name)!)).id).toBe('m');
    await s1.close();

    const s2 = await open({ dataDir: dir, clock });
    const t2 = s2.topic(name)!;
    expect(t2.group(long.toUpperCase())?.info()).toMatchObject({ deadLettered: 1, position: 1 });
    expect(t2.group(name)).toBeDefined();
    expect(await s2.removeTopic(name)).toBe(true);
    expect(await s2.removeTopic(`${name}.dlq`)).toBe(true);
    expect(fs.readdirSync(dir)).toEqual([]);
  });

  it('refuses names too long once lower-cased, or without room for .dlq, before touching the disk', async () => {
    const dir = await tempDir();
    const store = await open({ dataDir: dir });
    const t = await store.declareTopic('t', { mask: 0 });
    const cases: Array<[kind: 'topic' | 'group', name: string]> = [
      ['topic', 'x'.repeat(MAX_TOPIC_BYTES + 1)],
      ['topic', 'x'.repeat(255)],
      // 168 bytes as sent; `İ` lower-cases to `i̇`, 3 bytes: 252.
      ['topic', 'İ'.repeat(84)],
      ['group', 'x'.repeat(256)],
      ['group', 'İ'.repeat(86)],
    ];
    for (const [kind, name] of cases) {
      const err = await (kind === 'topic'
        ? store.declareTopic(name, { mask: 0 })
        : t.declareGroup(name, {})
      ).catch((e: unknown) => e);
      expect(err).toMatchObject({ code: 'ZBUS_ERR_BAD_NAME' });
    }
    expect(fs.readdirSync(dir)).toEqual(['t']);
    expect(fs.readdirSync(path.join(dir, 't', 'groups'))).toEqual([]);
    // A dead-letter topic may use the 4 bytes left for its suffix.
    await store.declareTopic(`${'x'.repeat(MAX_TOPIC_BYTES)}.dlq`, { mask: 0 });
  });

  it('a topic that cannot be created leaves no directory, and its error names no server path', async () => {
    const dir = await tempDir();
    const store = await open({ dataDir: dir });
    const real = fs.open;
    vi.spyOn(fs, 'open').mockImplementation(((p: fs.PathLike, ...rest: unknown[]) => {
      const cb = rest.at(-1) as (err: NodeJS.ErrnoException | null, fd?: number) => void;
      if (String(p).includes(`${path.sep}broken${path.sep}`)) {
        const err: NodeJS.ErrnoException = new Error(`ENAMETOOLONG: name too long, open '${String(p)}'`);
        Object.assign(err, { code: 'ENAMETOOLONG', syscall: 'open', path: String(p) });
        process.nextTick(() => cb(err));
        return;
      }
      return (real as (...a: unknown[]) => void)(p, ...rest);
    }) as typeof fs.open);
    const err = (await store.declareTopic('broken', { mask: 0 }).catch((e: unknown) => e)) as Error & {
      code: string;
    };
    expect(err.code).toBe('ZBUS_ERR_STORE');
    expect(err.message).toContain('ENAMETOOLONG');
    expect(err.message).not.toContain(dir);
    expect(store.topic('broken')).toBeUndefined();
    expect(fs.readdirSync(dir)).toEqual([]);
  });

  it('topics named __proto__, constructor and toString are topics like any other', async () => {
    const dir = await tempDir();
    const s1 = await open({ dataDir: dir });
    const names = ['__proto__', 'constructor', 'toString', 'hasOwnProperty'];
    for (const n of names) {
      const t = await s1.declareTopic(n, { mask: 0 });
      await t.declareGroup('__proto__', {});
      await t.append({ id: n, data: enc(n) });
    }
    await s1.close();
    const s2 = await open({ dataDir: dir });
    expect(
      s2
        .topics()
        .map((t) => t.name)
        .sort(),
    ).toEqual([...names].sort());
    for (const n of names) expect((await s2.topic(n)!.group('__proto__')!.next())?.id).toBe(n);
  });
});
