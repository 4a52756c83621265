// The monitor's forms, each in the one modal of modal.ts: declare a topic, publish a test message, peek at the
// oldest stored message, and confirm a destructive action. Each acts through the Monitor it is given.
import { Message } from '@zbus/client-browser';
import { h } from './dom.js';
import { checked } from './feed.js';
import { fmtBytes, fmtInt, MASK } from './format.js';
import { field, openDialog } from './modal.js';
import type { Monitor } from './state.js';

/** A peek shows this much of a body; the rest is counted. */
const PREVIEW_BYTES = 64 * 1024;
/** A binary body shows this many bytes as hex. */
const PREVIEW_HEX_BYTES = 512;
const PEEK_TIMEOUT_MS = 5000;

/** Asks before `run`, which the monitor follows with a refresh. */
export async function confirmThen(
  app: Monitor,
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
      app.refresh();
      return undefined;
    },
  });
}

/** The declare dialog's retention inputs, in the units people think in, and the header each sets. */
const RETENTION_FIELDS = [
  { name: 'retentionMiB', label: 'Max size (MiB)', header: 'topic_retention_bytes', unit: 1024 * 1024 },
  { name: 'retentionHours', label: 'Max age (hours)', header: 'topic_retention_ms', unit: 3_600_000 },
  { name: 'retentionMessages', label: 'Max messages', header: 'topic_retention_messages', unit: 1 },
] as const;

export function declareDialog(app: Monitor): void {
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
      h(
        'fieldset',
        { class: 'choices retention' },
        h('legend', null, 'Retention of a disk topic (empty: kept until removed)'),
        ...RETENTION_FIELDS.map((f) =>
          field(
            f.label,
            h('input', { name: f.name, type: 'number', min: '0', step: 'any', placeholder: '–' }),
          ),
        ),
      ),
    ],
    confirm: 'Declare',
    action: async (data) => {
      const topic = String(data.get('topic') ?? '').trim();
      if (topic === '') throw new Error('a topic needs a name');
      let mask = data.get('storage') === 'memory' ? MASK.memory : 0;
      if (data.get('rpc')) mask |= MASK.rpc;
      const headers: Record<string, string> = { cmd: 'declare', topic, topic_mask: String(mask) };
      for (const f of RETENTION_FIELDS) {
        const v = String(data.get(f.name) ?? '').trim();
        if (v === '') continue;
        const n = Number(v);
        if (!Number.isFinite(n) || n < 0) throw new Error(`${f.label} must be a number >= 0`);
        headers[f.header] = String(Math.round(n * f.unit));
      }
      // A raw declare: MqClient.declare() would re-declare it after every reconnect, even once removed.
      await checked(app.client, new Message({ headers }));
      // Show the new topic: clear a search that would hide it.
      app.state.view.search = '';
      app.showFilter();
      app.refresh();
      return undefined;
    },
  });
}

export function publishDialog(app: Monitor, topic: string): void {
  const m = app.state.model.topics.get(topic);
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
        app.client.send(msg);
        app.refresh();
        return 'Sent.';
      }
      const reply = await checked(app.client, msg);
      app.refresh();
      const durable = reply.headers.durable;
      return `Stored at offset ${reply.offset ?? '?'}${durable ? ` (durable: ${durable})` : ''}.`;
    },
  });
}

/** Reads the oldest stored message by offset (no group moves) and shows its headers and body. */
export async function peekDialog(app: Monitor, topic: string): Promise<void> {
  const offset = app.state.model.topics.get(topic)?.info.firstOffset ?? 0;
  let content: (Node | string)[];
  try {
    const msg = await app.client.consume(topic, { offset, timeout: PEEK_TIMEOUT_MS });
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

function bodyPreview(msg: Message): HTMLElement {
  const bytes = msg.body;
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(0, PREVIEW_BYTES));
    if ((msg.headers['content-type'] ?? '').includes('json')) {
      try {
        text = JSON.stringify(JSON.parse(text), null, 2);
      } catch {
        // keep it as sent
      }
    }
  } catch {
    const hex = Array.from(bytes.subarray(0, PREVIEW_HEX_BYTES), (b) => b.toString(16).padStart(2, '0')).join(
      ' ',
    );
    text = `(binary, ${fmtBytes(bytes.length)})\n${hex}${bytes.length > PREVIEW_HEX_BYTES ? ' …' : ''}`;
  }
  if (bytes.length > PREVIEW_BYTES) text += `\n… (${fmtBytes(bytes.length)} in all)`;
  return h('pre', { class: 'body' }, text);
}
