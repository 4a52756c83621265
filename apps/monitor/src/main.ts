// The zbus monitor: one WebSocket to the broker that served the page (@zbus/client-browser), `track_sub` for
// the tracker view (pushes on every change), `query` every 2 s for topics and groups, rates computed here
// from successive infos. Rendering is batched into animation frames and touches only what changed.
import { Message, MqClient, type ServerInfo, type TrackerInfo } from '@zbus/client-browser';
import { areaChart } from './chart.js';
import { field, openDialog } from './dialogs.js';
import { $, h, setText } from './dom.js';
import { fmtAgo, fmtBytes, fmtInt, fmtRate, MASK } from './format.js';
import { HISTORY, Model } from './model.js';
import { PAGE_SIZE, type SortKey, type TableState, TopicsTable } from './topics.js';

const POLL_MS = 2000;
/** A hidden tab polls less often (rates are per second of elapsed time, so they stay right). */
const HIDDEN_POLL_MS = 10_000;

const model = new Model();
const st: TableState = { search: '', kind: '', sort: 'name', desc: false, page: 0, expanded: new Set() };
const SORT_KEYS = new Set([
  'name',
  'depth',
  'backlog',
  'bytes',
  'in',
  'out',
  'groups',
  'consumers',
  'dlq',
  'updated',
]);

/** The view (filter, sort, page) lives in the URL fragment, so a reload or a shared link shows the same. */
function readHash(): void {
  const p = new URLSearchParams(location.hash.slice(1));
  st.search = p.get('q') ?? '';
  st.kind = p.get('show') ?? '';
  const sort = p.get('sort') ?? 'name';
  st.sort = (SORT_KEYS.has(sort) ? sort : 'name') as SortKey;
  st.desc = p.get('desc') === '1';
  st.page = Math.max(0, Number(p.get('page') ?? 1) - 1 || 0);
  ($('#search') as HTMLInputElement).value = st.search;
  ($('#kind') as HTMLSelectElement).value = st.kind;
}

let lastHash = '';
function writeHash(): void {
  const p = new URLSearchParams();
  if (st.search) p.set('q', st.search);
  if (st.kind) p.set('show', st.kind);
  if (st.sort !== 'name') p.set('sort', st.sort);
  if (st.desc) p.set('desc', '1');
  if (st.page > 0) p.set('page', String(st.page + 1));
  const hash = p.toString();
  if (hash === lastHash) return;
  lastHash = hash;
  history.replaceState(null, '', hash ? `#${hash}` : location.pathname + location.search);
}
const table = new TopicsTable($<HTMLTableSectionElement>('#topics tbody'));
const client = new MqClient(location.host, { timeout: 10_000 });
let tracker: TrackerInfo | undefined;
let lastError = '';

// ---- connection ---------------------------------------------------------------------------------------

function setConn(state: 'connecting' | 'live' | 'reconnecting' | 'offline'): void {
  const el = $('#conn');
  el.className = `pill ${state}`;
  setText(el, state === 'live' ? 'live' : state === 'connecting' ? 'connecting…' : state);
}

client.on('connected', () => {
  setConn('live');
  subscribe();
  void poll();
});
client.on('disconnected', () => setConn('reconnecting'));
client.on('message', (m) => {
  if (m.headers.cmd !== 'track_pub' || m.status !== 200) return;
  try {
    onTracker(m.json<TrackerInfo>());
  } catch {
    // not a TrackerInfo: ignore
  }
});

async function checked(msg: Message): Promise<Message> {
  const reply = await client.invoke(msg);
  if (reply.status !== 200) {
    const text = reply.bodyText().trim();
    throw new Error(`${reply.status} ${text || 'request failed'}`);
  }
  return reply;
}

function subscribe(): void {
  checked(new Message({ headers: { cmd: 'track_sub' } }))
    .then((reply) => onTracker(reply.json<TrackerInfo>()))
    .catch(() => {
      // an older broker without tracker support: the servers table falls back to ServerInfo
    });
}

let pollTimer: ReturnType<typeof setTimeout> | undefined;
let polling = false;

async function poll(): Promise<void> {
  if (pollTimer !== undefined) clearTimeout(pollTimer);
  pollTimer = setTimeout(() => void poll(), document.hidden ? HIDDEN_POLL_MS : POLL_MS);
  if (polling || !client.connected) return;
  polling = true;
  try {
    const reply = await checked(new Message({ headers: { cmd: 'query' } }));
    model.apply(reply.json<ServerInfo>());
    lastError = '';
  } catch (err) {
    lastError = (err as Error).message;
  } finally {
    polling = false;
  }
  schedule();
}

let pushTimer: ReturnType<typeof setTimeout> | undefined;

function onTracker(info: TrackerInfo): void {
  tracker = info;
  schedule();
  // A change happened (declare, remove, consumers): refresh the topics soon, once for a burst of pushes.
  if (pushTimer === undefined) {
    pushTimer = setTimeout(() => {
      pushTimer = undefined;
      void poll();
    }, 150);
  }
}

async function start(): Promise<void> {
  setConn('connecting');
  for (let wait = 250; ; wait = Math.min(wait * 2, 5000)) {
    try {
      await client.connect();
      return;
    } catch {
      setConn('offline');
      await new Promise((r) => setTimeout(r, wait));
    }
  }
}

/** Auth is on when the login page is served rather than redirected to `/`. */
async function detectAuth(): Promise<void> {
  try {
    const res = await fetch('/?cmd=login', { redirect: 'manual', credentials: 'same-origin' });
    $('#logout').hidden = res.type === 'opaqueredirect';
  } catch {
    // leave the link hidden
  }
}

// ---- rendering ----------------------------------------------------------------------------------------

let frame = 0;

function schedule(): void {
  if (frame !== 0) return;
  frame = requestAnimationFrame(() => {
    frame = 0;
    render();
  });
}

function render(): void {
  const now = Date.now();
  const server = model.server;
  if (server) {
    const addr = server.serverAddress?.address ?? location.host;
    setText($('#server'), `${addr} · zbus ${server.serverVersion}`);
    document.title = `zbus monitor · ${addr}`;
  }
  renderStats();
  renderServers();
  areaChart($<HTMLCanvasElement>('#totals'), model.inHist, model.outHist, HISTORY, fmtRate);
  table.render(model, st, now);
  if (model.server !== undefined) st.page = table.page;
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
  $('#empty').hidden = table.total !== 0 || model.server === undefined;
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
    const on = th.dataset.sort === st.sort;
    th.classList.toggle('sorted', on);
    th.setAttribute('aria-sort', on ? (st.desc ? 'descending' : 'ascending') : 'none');
  }
  if (model.server !== undefined) writeHash();
  document.body.dataset.ready = 'true';
}

function renderStats(): void {
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

let serversKey = '';

function renderServers(): void {
  const own = model.server;
  const table: Record<string, ServerInfo> = tracker?.serverTable ?? {};
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
  if (key === serversKey) return;
  serversKey = key;
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

// ---- actions ------------------------------------------------------------------------------------------

function after(): void {
  void poll();
}

async function confirmThen(
  title: string,
  text: string,
  label: string,
  run: () => Promise<void>,
): Promise<void> {
  await openDialog({
    title,
    body: [h('p', null, text)],
    confirm: label,
    danger: true,
    action: async () => {
      await run();
      after();
      return undefined;
    },
  });
}

function declareDialog(): void {
  const name = h('input', {
    name: 'topic',
    required: true,
    placeholder: 'orders',
    autocomplete: 'off',
    spellcheck: 'false',
  });
  void openDialog({
    title: 'Declare a topic',
    body: [
      field('Name', name),
      h(
        'fieldset',
        { class: 'choices' },
        h('legend', null, 'Storage'),
        h(
          'label',
          null,
          h('input', { type: 'radio', name: 'storage', value: 'disk', checked: true }),
          ' Disk (durable log)',
        ),
        h('label', null, h('input', { type: 'radio', name: 'storage', value: 'memory' }), ' Memory'),
      ),
      h(
        'label',
        { class: 'check' },
        h('input', { type: 'checkbox', name: 'rpc' }),
        ' RPC topic (services consume it, callers get replies)',
      ),
    ],
    confirm: 'Declare',
    action: async (data) => {
      const topic = String(data.get('topic') ?? '').trim();
      if (topic === '') throw new Error('a topic needs a name');
      let mask = data.get('storage') === 'memory' ? MASK.memory : 0;
      if (data.get('rpc')) mask |= MASK.rpc;
      // A raw declare: MqClient.declare() would re-declare it after every reconnect, even once removed.
      await checked(new Message({ headers: { cmd: 'declare', topic, topic_mask: String(mask) } }));
      st.search = '';
      ($('#search') as HTMLInputElement).value = '';
      after();
      return undefined;
    },
  });
}

function publishDialog(topic: string): void {
  const m = model.topics.get(topic);
  const isRpc = ((m?.info.mask ?? 0) & MASK.rpc) !== 0;
  const body = h('textarea', { name: 'body', rows: 6, spellcheck: 'false' });
  body.value = JSON.stringify({ hello: 'zbus', at: new Date().toISOString() }, null, 2);
  const type = h(
    'select',
    { name: 'type' },
    h('option', { value: 'application/json' }, 'application/json'),
    h('option', { value: 'text/plain' }, 'text/plain'),
  );
  void openDialog({
    title: `Publish to ${topic}`,
    body: [
      field('Body', body),
      h(
        'div',
        { class: 'row' },
        field('Content type', type),
        field('Tag', h('input', { name: 'tag', placeholder: 'optional', autocomplete: 'off' })),
      ),
      isRpc
        ? h('p', { class: 'muted' }, 'RPC topic: the message is sent without an ack (replies go to callers).')
        : null,
    ],
    confirm: 'Publish',
    action: async (data) => {
      const msg = new Message({ headers: { cmd: 'produce', topic } });
      const tag = String(data.get('tag') ?? '').trim();
      if (tag) msg.set('tag', tag);
      msg.set('content-type', String(data.get('type')));
      msg.setBody(String(data.get('body') ?? ''));
      if (isRpc) {
        msg.set('ack', 'false');
        client.send(msg);
        after();
        return 'Sent.';
      }
      const reply = await checked(msg);
      after();
      const durable = reply.headers.durable;
      return `Stored at offset ${reply.offset ?? '?'}${durable ? ` (durable: ${durable})` : ''}.`;
    },
  });
}

function bodyPreview(msg: Message): HTMLElement {
  const bytes = msg.body;
  const limit = 64 * 1024;
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(0, limit));
    if ((msg.headers['content-type'] ?? '').includes('json')) {
      try {
        text = JSON.stringify(JSON.parse(text), null, 2);
      } catch {
        // keep it as sent
      }
    }
  } catch {
    const hex = Array.from(bytes.subarray(0, 512), (b) => b.toString(16).padStart(2, '0')).join(' ');
    text = `(binary, ${fmtBytes(bytes.length)})\n${hex}${bytes.length > 512 ? ' …' : ''}`;
  }
  if (bytes.length > limit) text += `\n… (${fmtBytes(bytes.length)} in all)`;
  return h('pre', { class: 'body' }, text);
}

async function peek(topic: string): Promise<void> {
  const m = model.topics.get(topic);
  const offset = m?.info.firstOffset ?? 0;
  let content: (Node | string)[];
  try {
    const msg = await client.consume(topic, { offset, timeout: 5000 });
    if (msg === undefined) content = [h('p', { class: 'muted' }, 'No message came back.')];
    else {
      const rows = Object.entries(msg.headers)
        .filter(([, v]) => v !== undefined)
        .map(([k, v]) => h('tr', null, h('th', null, k), h('td', { class: 'mono' }, String(v))));
      content = [
        h(
          'p',
          { class: 'muted' },
          `The oldest stored message, offset ${fmtInt(msg.offset ?? offset)}. Peeking moves no group.`,
        ),
        h('table', { class: 'headers' }, h('tbody', null, ...rows)),
        bodyPreview(msg),
      ];
    }
  } catch (err) {
    const text = (err as Error).message;
    content = [
      h('p', { class: 'muted' }, /not found|404/i.test(text) ? 'The topic holds no message.' : text),
    ];
  }
  void openDialog({ title: `Head of ${topic}`, body: content });
}

$('#topics tbody').addEventListener('click', (ev) => {
  const target = (ev.target as Element).closest<HTMLElement>('[data-act]');
  if (target === null) return;
  const tr = target.closest<HTMLElement>('tr[data-topic], tr[data-detail]');
  const topic = tr?.dataset.topic ?? tr?.dataset.detail;
  if (!topic) return;
  const group = target.closest<HTMLElement>('tr[data-group]')?.dataset.group;
  switch (target.dataset.act) {
    case 'toggle':
      if (st.expanded.has(topic)) st.expanded.delete(topic);
      else st.expanded.add(topic);
      schedule();
      break;
    case 'publish':
      publishDialog(topic);
      break;
    case 'peek':
      void peek(topic);
      break;
    case 'empty':
      void confirmThen(
        `Empty ${topic}?`,
        `Every stored message of ${topic} is removed, for every group. This cannot be undone.`,
        'Empty topic',
        () => client.empty(topic),
      );
      break;
    case 'remove':
      void confirmThen(
        `Remove ${topic}?`,
        `The topic ${topic}, its groups and its messages are deleted. This cannot be undone.`,
        'Remove topic',
        () => client.remove(topic),
      );
      break;
    case 'skip-group':
      if (group)
        void confirmThen(
          `Skip ${group} to the end?`,
          `Group ${group} of ${topic} moves past every stored message; they stay for other groups.`,
          'Skip to end',
          () => client.empty(topic, group),
        );
      break;
    case 'remove-group':
      if (group)
        void confirmThen(
          `Remove group ${group}?`,
          `The consume group ${group} of ${topic} is deleted; its consumers get errors.`,
          'Remove group',
          () => client.remove(topic, group),
        );
      break;
    case 'show-dlq':
      st.search = `${topic}.dlq`;
      st.kind = '';
      st.page = 0;
      ($('#search') as HTMLInputElement).value = st.search;
      ($('#kind') as HTMLSelectElement).value = '';
      schedule();
      break;
  }
});

// ---- toolbar ------------------------------------------------------------------------------------------

$('#search').addEventListener('input', (ev) => {
  st.search = (ev.target as HTMLInputElement).value;
  st.page = 0;
  schedule();
});
$('#kind').addEventListener('change', (ev) => {
  st.kind = (ev.target as HTMLSelectElement).value;
  st.page = 0;
  schedule();
});
$('#prev').addEventListener('click', () => {
  st.page = Math.max(0, table.page - 1);
  schedule();
});
$('#next').addEventListener('click', () => {
  st.page = Math.min(table.pages - 1, table.page + 1);
  schedule();
});
$('#declare').addEventListener('click', declareDialog);
for (const th of document.querySelectorAll<HTMLElement>('#topics th[data-sort]')) {
  th.tabIndex = 0;
  const sort = () => {
    const key = th.dataset.sort as SortKey;
    if (st.sort === key) st.desc = !st.desc;
    else {
      st.sort = key;
      st.desc = key !== 'name'; // numbers: biggest first
    }
    schedule();
  };
  th.addEventListener('click', sort);
  th.addEventListener('keydown', (ev) => {
    if (ev.key === 'Enter' || ev.key === ' ') {
      ev.preventDefault();
      sort();
    }
  });
}
document.addEventListener('keydown', (ev) => {
  if (
    ev.key === '/' &&
    document.activeElement?.tagName !== 'INPUT' &&
    document.activeElement?.tagName !== 'TEXTAREA'
  ) {
    ev.preventDefault();
    $('#search').focus();
  }
});
// The "updated … ago" text and ages tick even when nothing arrives.
setInterval(schedule, 1000);
document.addEventListener('visibilitychange', () => {
  if (!document.hidden) void poll();
});

readHash();
addEventListener('hashchange', () => {
  readHash();
  schedule();
});
void detectAuth();
void start();
