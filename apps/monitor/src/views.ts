// The page drawn from the MonitorState: header, totals and their chart, the servers table, the topics table
// with its pager, and the URL fragment. Rendering is batched into one animation frame and writes only what
// changed.
import type { ServerInfo } from '@zbus/client-browser';
import { areaChart } from './chart.js';
import { $, h, setText } from './dom.js';
import type { ConnectionState } from './feed.js';
import { fmtAgo, fmtBytes, fmtInt, fmtRate } from './format.js';
import { HISTORY } from './model.js';
import { fragmentOf, type MonitorState } from './state.js';
import { PAGE_SIZE, TopicsTable } from './topics.js';

export class PageView {
  readonly table = new TopicsTable($<HTMLTableSectionElement>('#topics tbody'));
  readonly #state: MonitorState;
  #frame = 0;
  #serversKey = '';
  #fragment = '';

  constructor(state: MonitorState) {
    this.#state = state;
  }

  schedule(): void {
    if (this.#frame !== 0) return;
    this.#frame = requestAnimationFrame(() => {
      this.#frame = 0;
      this.render(Date.now());
    });
  }

  render(now: number): void {
    const { model, view, lastError } = this.#state;
    const server = model.server;
    if (server) {
      const addr = server.serverAddress?.address ?? location.host;
      setText($('#server'), `${addr} · zbus ${server.serverVersion}`);
      document.title = `zbus monitor · ${addr}`;
    }
    this.#renderStats();
    this.#renderServers();
    areaChart($<HTMLCanvasElement>('#totals'), model.inHist, model.outHist, HISTORY, fmtRate);
    const table = this.table;
    table.render(model, view, now);
    if (server !== undefined) view.page = table.page;
    const from = table.total === 0 ? 0 : table.page * PAGE_SIZE + 1;
    const to = Math.min(table.total, (table.page + 1) * PAGE_SIZE);
    setText(
      $('#count'),
      table.pages > 1
        ? `${fmtInt(from)}–${fmtInt(to)} of ${fmtInt(table.total)} topics`
        : `${fmtInt(table.total)} of ${fmtInt(model.topics.size)} topics`,
    );
    $<HTMLButtonElement>('#prev').disabled = table.page === 0;
    $<HTMLButtonElement>('#next').disabled = table.page >= table.pages - 1;
    $('#pager').hidden = table.pages <= 1;
    $('#empty').hidden = table.total !== 0 || server === undefined;
    setText(
      $('#updated'),
      lastError
        ? `error: ${lastError}`
        : model.updatedAt
          ? `updated ${fmtAgo(model.updatedAt, now + 999)} ago`
          : '',
    );
    $('#updated').classList.toggle('error', lastError !== '');
    for (const th of document.querySelectorAll<HTMLElement>('#topics th[data-sort]')) {
      const on = th.dataset.sort === view.sort;
      th.classList.toggle('sorted', on);
      th.setAttribute('aria-sort', on ? (view.desc ? 'descending' : 'ascending') : 'none');
    }
    if (server !== undefined) this.#writeFragment();
    document.body.dataset.ready = 'true';
  }

  /** Puts the filter's search text and kind into their inputs (after they changed elsewhere: URL, a link). */
  showFilter(): void {
    ($('#search') as HTMLInputElement).value = this.#state.view.search;
    ($('#kind') as HTMLSelectElement).value = this.#state.view.kind;
  }

  showConnection(state: ConnectionState): void {
    const el = $('#conn');
    el.className = `pill ${state}`;
    setText(el, state === 'connecting' ? 'connecting…' : state);
  }

  showLogout(show: boolean): void {
    $('#logout').hidden = !show;
  }

  #writeFragment(): void {
    const fragment = fragmentOf(this.#state.view);
    if (fragment === this.#fragment) return;
    this.#fragment = fragment;
    history.replaceState(null, '', fragment ? `#${fragment}` : location.pathname + location.search);
  }

  #renderStats(): void {
    const model = this.#state.model;
    let backlog = 0;
    let unacked = 0;
    let dead = 0;
    let consumers = 0;
    let bytes = 0;
    for (const m of model.topics.values()) {
      backlog += m.backlog;
      unacked += m.unacked;
      dead += m.dlq;
      consumers += m.consumers;
      bytes += m.info.bytes ?? 0;
    }
    const values: Record<string, string> = {
      topics: fmtInt(model.topics.size),
      bytes: fmtBytes(bytes),
      backlog: fmtInt(backlog),
      unacked: fmtInt(unacked),
      dead: fmtInt(dead),
      consumers: fmtInt(consumers),
      in: fmtRate(model.inRate),
      out: fmtRate(model.outRate),
    };
    for (const [k, v] of Object.entries(values)) setText($(`#stat-${k}`), v);
  }

  #renderServers(): void {
    const own = this.#state.model.server;
    const table: Record<string, ServerInfo> = this.#state.tracker?.serverTable ?? {};
    const entries = Object.entries(table);
    if (entries.length === 0 && own) entries.push([own.serverAddress.address, own]);
    const rows = entries.map(([key, s]) => {
      const topics = Object.values(s.topicTable ?? {});
      return {
        key,
        version: s.serverVersion,
        infoVersion: s.infoVersion,
        topics: topics.length,
        consumers: topics.reduce((n, t) => n + (t.consumerCount ?? 0), 0),
        trackers: (s.trackerList ?? []).map((t) => t.address).join(', '),
        own: own !== undefined && s.serverAddress?.address === own.serverAddress.address,
      };
    });
    const key = JSON.stringify(rows);
    if (key === this.#serversKey) return;
    this.#serversKey = key;
    $('#servers tbody').replaceChildren(
      ...rows.map((r) =>
        h(
          'tr',
          { 'data-server': r.key },
          h(
            'td',
            null,
            r.own
              ? h('b', null, r.key)
              : h(
                  'a',
                  { href: `${location.protocol}//${r.key.replace(/^\[SSL\]/, '')}/`, title: 'Its monitor' },
                  r.key,
                ),
            r.own ? h('span', { class: 'badge b-own' }, 'this server') : null,
          ),
          h('td', null, r.version),
          h('td', { class: 'num mono' }, String(r.infoVersion)),
          h('td', { class: 'num' }, fmtInt(r.topics)),
          h('td', { class: 'num' }, fmtInt(r.consumers)),
          h('td', { class: 'mono' }, r.trackers || '–'),
        ),
      ),
    );
    setText($('#servers-count'), `${rows.length} ${rows.length === 1 ? 'server' : 'servers'}`);
  }
}
