// The topics table: keyed rows (one <tr> per topic, kept across renders), cells written only when their
// text changes, rows reordered in place, and one page of rows in the DOM at a time, so that thousands of
// topics cost a sort and a few hundred cell comparisons per tick, not a rebuilt table.
import { sparkline } from './chart.js';
import { badges, h, setText } from './dom.js';
import {
  fmtAgo,
  fmtBytes,
  fmtInt,
  fmtRate,
  fmtRetention,
  fmtTime,
  groupLabels,
  MASK,
  topicLabels,
} from './format.js';
import { HISTORY, type Model, type TopicModel } from './model.js';

export const PAGE_SIZE = 200;

export type SortKey =
  | 'name'
  | 'depth'
  | 'backlog'
  | 'bytes'
  | 'in'
  | 'out'
  | 'groups'
  | 'consumers'
  | 'dlq'
  | 'updated';

const SORTERS: Record<SortKey, (m: TopicModel) => number | string> = {
  name: (m) => m.name.toLowerCase(),
  depth: (m) => m.info.messageDepth,
  backlog: (m) => m.backlog,
  bytes: (m) => m.info.bytes ?? 0,
  in: (m) => m.inRate,
  out: (m) => m.outRate,
  groups: (m) => m.info.consumeGroupList.length,
  consumers: (m) => m.consumers,
  dlq: (m) => m.dlq,
  updated: (m) => m.info.lastUpdatedTime ?? 0,
};

export function isSortKey(key: string): key is SortKey {
  return Object.hasOwn(SORTERS, key);
}

/** What the table shows: the filter, the sort, the page asked for, and the topics whose details are open. */
export interface TableState {
  search: string;
  kind: string;
  sort: SortKey;
  desc: boolean;
  page: number;
  expanded: Set<string>;
}

interface Row {
  tr: HTMLTableRowElement;
  cells: HTMLTableCellElement[];
  spark: HTMLCanvasElement;
  sparkVersion: number;
  maskKey: number;
  detail: HTMLTableRowElement | undefined;
  detailKey: string;
}

const COLS = 12;

function matches(m: TopicModel, search: string, kind: string): boolean {
  if (search !== '' && !m.name.toLowerCase().includes(search)) return false;
  const mask = m.info.mask ?? 0;
  switch (kind) {
    case 'disk':
      return (mask & MASK.memory) === 0;
    case 'memory':
      return (mask & MASK.memory) !== 0;
    case 'rpc':
      return (mask & MASK.rpc) !== 0;
    case 'backlog':
      return m.backlog > 0;
    case 'dlq':
      return m.dlq > 0 || m.name.endsWith('.dlq');
    default:
      return true;
  }
}

/** The method page of an RPC topic, served by the service through the broker. */
export function methodPage(topic: string): string {
  return `${location.protocol}//${location.host}/${encodeURIComponent(topic)}`;
}

export class TopicsTable {
  readonly #tbody: HTMLTableSectionElement;
  readonly #rows = new Map<string, Row>();
  #order: string[] = [];
  /** Topics in view after filter and sort (all pages). */
  total = 0;
  pages = 1;
  page = 0;

  constructor(tbody: HTMLTableSectionElement) {
    this.#tbody = tbody;
  }

  render(model: Model, st: TableState, now = Date.now()): void {
    const search = st.search.trim().toLowerCase();
    const list: TopicModel[] = [];
    for (const m of model.topics.values()) if (matches(m, search, st.kind)) list.push(m);
    const key = SORTERS[st.sort];
    const dir = st.desc ? -1 : 1;
    list.sort((a, b) => {
      const x = key(a);
      const y = key(b);
      if (x < y) return -dir;
      if (x > y) return dir;
      return a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
    });
    this.total = list.length;
    this.pages = Math.max(1, Math.ceil(list.length / PAGE_SIZE));
    // The page shown; `st.page` keeps what was asked for (a page from the URL survives until data arrives).
    this.page = Math.min(st.page, this.pages - 1);
    const slice = list.slice(this.page * PAGE_SIZE, (this.page + 1) * PAGE_SIZE);

    // Update or create the rows of this page, then put them in order with as few moves as possible.
    const wanted: HTMLTableRowElement[] = [];
    const names: string[] = [];
    for (const m of slice) {
      let row = this.#rows.get(m.name);
      if (row === undefined) {
        row = this.#create(m.name);
        this.#rows.set(m.name, row);
      }
      this.#update(row, m, now);
      wanted.push(row.tr);
      names.push(m.name);
      if (st.expanded.has(m.name)) {
        this.#updateDetail(row, m);
        wanted.push(row.detail!);
      } else if (row.detail) {
        row.detail.remove();
        row.detail = undefined;
        row.detailKey = '';
      }
    }
    const same = names.length === this.#order.length && names.every((n, i) => n === this.#order[i]);
    if (!same || this.#tbody.children.length !== wanted.length) {
      let cursor = this.#tbody.firstElementChild;
      for (const tr of wanted) {
        if (tr === cursor) cursor = cursor.nextElementSibling;
        else this.#tbody.insertBefore(tr, cursor);
      }
      while (cursor) {
        const next = cursor.nextElementSibling;
        cursor.remove();
        cursor = next;
      }
      this.#order = names;
    }
    // Forget rows of topics that are gone.
    for (const name of this.#rows.keys()) {
      if (!model.topics.has(name)) {
        const r = this.#rows.get(name)!;
        r.tr.remove();
        r.detail?.remove();
        this.#rows.delete(name);
        st.expanded.delete(name);
      }
    }
  }

  #create(name: string): Row {
    const cells: HTMLTableCellElement[] = [];
    const tr = h('tr', { 'data-topic': name, class: 'topic' });
    const classes = [
      'name',
      'num depth',
      'num backlog',
      'num bytes',
      'num in',
      'num out',
      'spark',
      'num groups',
      'num consumers',
      'num dlq',
      'num updated',
      'actions',
    ];
    for (const c of classes) {
      const td = h('td', { class: c });
      cells.push(td);
      tr.append(td);
    }
    const spark = h('canvas', { width: 96, height: 22, 'aria-hidden': 'true' });
    cells[6]!.append(spark);
    cells[11]!.append(
      h('button', { class: 'mini', 'data-act': 'publish', title: 'Publish a test message' }, 'Publish'),
      h('button', { class: 'mini', 'data-act': 'peek', title: 'Show the oldest stored message' }, 'Peek'),
      h('button', { class: 'mini', 'data-act': 'empty', title: 'Remove every message' }, 'Empty'),
      h('button', { class: 'mini danger', 'data-act': 'remove', title: 'Remove the topic' }, 'Remove'),
    );
    return { tr, cells, spark, sparkVersion: -1, maskKey: -1, detail: undefined, detailKey: '' };
  }

  #update(row: Row, m: TopicModel, now: number): void {
    const c = row.cells;
    const info = m.info;
    const mask = info.mask ?? 0;
    if (row.maskKey !== mask) {
      row.maskKey = mask;
      const toggle = h(
        'button',
        { class: 'link toggle', 'data-act': 'toggle', title: 'Groups and details' },
        m.name,
      );
      const parts: (Node | string)[] = [toggle, ...badges(topicLabels(mask))];
      if (mask & MASK.rpc) {
        parts.push(
          h(
            'a',
            { class: 'methods', href: methodPage(m.name), target: '_blank', rel: 'noopener' },
            'methods ↗',
          ),
        );
      }
      c[0]!.replaceChildren(...parts);
    }
    setText(c[1]!, fmtInt(info.messageDepth));
    setText(c[2]!, fmtInt(m.backlog));
    setText(c[3]!, fmtBytes(info.bytes));
    setText(c[4]!, fmtRate(m.inRate));
    setText(c[5]!, fmtRate(m.outRate));
    setText(c[7]!, fmtInt(info.consumeGroupList.length));
    setText(c[8]!, fmtInt(m.consumers));
    setText(c[9]!, m.dlq > 0 ? fmtInt(m.dlq) : '');
    c[9]!.classList.toggle('warn', m.dlq > 0);
    setText(c[10]!, fmtAgo(info.lastUpdatedTime, now));
    if (row.sparkVersion !== m.histVersion) {
      row.sparkVersion = m.histVersion;
      sparkline(row.spark, m.inHist, m.outHist, HISTORY);
    }
  }

  #updateDetail(row: Row, m: TopicModel): void {
    const info = m.info;
    const key = JSON.stringify([
      info.consumeGroupList,
      info.firstOffset,
      info.nextOffset,
      info.delayedCount,
      info.corruptRecords,
      info.mask,
      info.retention,
    ]);
    if (row.detail && key === row.detailKey) return;
    row.detailKey = key;
    const meta = h(
      'dl',
      { class: 'meta' },
      h('dt', null, 'Offsets'),
      h('dd', null, `${fmtInt(info.firstOffset)} … ${fmtInt(info.nextOffset)}`),
      h('dt', null, 'Delayed'),
      h('dd', null, fmtInt(info.delayedCount)),
      h('dt', null, 'Corrupt records'),
      h('dd', { class: info.corruptRecords ? 'warn' : '' }, fmtInt(info.corruptRecords)),
      h('dt', null, 'Retention'),
      h('dd', { class: 'retention' }, fmtRetention(info.retention)),
      h('dt', null, 'Created'),
      h('dd', null, fmtTime(info.createdTime)),
      h('dt', null, 'Creator'),
      h('dd', null, info.creator ? String(info.creator) : '–'),
    );
    const groups = info.consumeGroupList;
    const gt = h(
      'table',
      { class: 'groups' },
      h(
        'thead',
        null,
        h(
          'tr',
          null,
          h('th', null, 'Group'),
          h('th', null, 'Filter'),
          h('th', { class: 'num' }, 'Backlog'),
          h('th', { class: 'num' }, 'Unacked'),
          h('th', { class: 'num' }, 'Dead letters'),
          h('th', { class: 'num' }, 'Position'),
          h('th', null, 'Consumers'),
          h('th', null, ''),
        ),
      ),
    );
    const body = h('tbody');
    for (const g of groups) {
      const consumers = g.consumerList ?? [];
      const dead = g.deadLetterCount ?? 0;
      body.append(
        h(
          'tr',
          { 'data-group': g.groupName },
          h('td', null, h('b', null, g.groupName), ...badges(groupLabels(g.mask ?? 0))),
          h('td', { class: 'mono' }, g.filter ? String(g.filter) : ''),
          h('td', { class: 'num' }, fmtInt(g.messageCount)),
          h('td', { class: 'num' }, fmtInt(g.unackedCount)),
          h(
            'td',
            { class: dead > 0 ? 'num warn' : 'num' },
            dead > 0
              ? h(
                  'button',
                  { class: 'link', 'data-act': 'show-dlq', title: `Show ${m.name}.dlq` },
                  fmtInt(dead),
                )
              : '0',
          ),
          h('td', { class: 'num' }, fmtInt(g.position)),
          h(
            'td',
            { class: 'consumers' },
            consumers.length === 0
              ? h('span', { class: 'muted' }, 'none')
              : h('span', { class: 'mono', title: consumers.join('\n') }, consumers.join(', ')),
          ),
          h(
            'td',
            { class: 'actions' },
            h(
              'button',
              { class: 'mini', 'data-act': 'skip-group', title: 'Move the group to the end (empty it)' },
              'Skip to end',
            ),
            h('button', { class: 'mini danger', 'data-act': 'remove-group' }, 'Remove'),
          ),
        ),
      );
    }
    if (groups.length === 0)
      body.append(h('tr', null, h('td', { colspan: 8, class: 'muted' }, 'No consume groups.')));
    gt.append(body);
    const td = h('td', { colspan: COLS }, h('div', { class: 'detail-box' }, meta, gt));
    const tr = h('tr', { class: 'detail', 'data-detail': m.name }, td);
    if (row.detail) row.detail.replaceWith(tr);
    row.detail = tr;
  }
}
