// Number, size, rate and time formats for the tables (tabular, short, no locale surprises).
import type { TopicRetention } from '@zbus/client-browser';

const int = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 });

export function fmtInt(n: number | undefined): string {
  return n === undefined || !Number.isFinite(n) ? '–' : int.format(n);
}

export function fmtBytes(n: number | undefined): string {
  if (n === undefined || !Number.isFinite(n)) return '–';
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v < 10 ? v.toFixed(1) : Math.round(v)} ${units[i]}`;
}

/** Messages per second: `0`, `0.4`, `12`, `1.2k`, `34k`, `1.2M`. */
export function fmtRate(r: number | undefined): string {
  if (r === undefined || !Number.isFinite(r)) return '–';
  if (r === 0) return '0';
  if (r < 10) return r.toFixed(1);
  if (r < 1000) return String(Math.round(r));
  if (r < 10_000) return `${(r / 1000).toFixed(1)}k`;
  if (r < 1_000_000) return `${Math.round(r / 1000)}k`;
  return `${(r / 1_000_000).toFixed(1)}M`;
}

/** How long ago, short: `5s`, `3m`, `2h`, `4d`. */
export function fmtAgo(ms: number | undefined, now = Date.now()): string {
  if (ms === undefined || !Number.isFinite(ms) || ms <= 0) return '–';
  const s = Math.max(0, Math.round((now - ms) / 1000));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m`;
  if (s < 86_400) return `${Math.floor(s / 3600)}h`;
  return `${Math.floor(s / 86_400)}d`;
}

export function fmtTime(ms: number | undefined): string {
  if (ms === undefined || !Number.isFinite(ms) || ms <= 0) return '–';
  return new Date(ms).toISOString().replace('T', ' ').slice(0, 19);
}

/** A topic's retention limits, `10 GiB · 7d · 1,000,000 messages`, or what happens without any. */
export function fmtRetention(r: TopicRetention | undefined): string {
  const parts: string[] = [];
  if (r?.bytes) parts.push(fmtBytes(r.bytes));
  if (r?.ms) parts.push(fmtSpan(r.ms));
  if (r?.messages) parts.push(`${fmtInt(r.messages)} messages`);
  return parts.length > 0 ? parts.join(' · ') : 'none (kept until removed)';
}

/** A retention age as the dialog asks for it: hours, or days when whole (`168h` shows as `7d`). */
function fmtSpan(ms: number): string {
  const hours = ms / 3_600_000;
  if (hours >= 24 && hours % 24 === 0) return `${hours / 24}d`;
  return hours >= 1 ? `${Number(hours.toFixed(1))}h` : `${Math.round(ms / 1000)}s`;
}

/** Topic and group mask labels (zbus-protocol.md §7.2). */
export const MASK = {
  memory: 1,
  rpc: 2,
  proxy: 4,
  pause: 8,
  exclusive: 16,
  deleteOnExit: 32,
  ackRequired: 64,
} as const;

export function topicLabels(mask: number): string[] {
  const out = [mask & MASK.memory ? 'memory' : 'disk'];
  if (mask & MASK.rpc) out.push('rpc');
  if (mask & MASK.proxy) out.push('proxy');
  if (mask & MASK.pause) out.push('paused');
  return out;
}

export function groupLabels(mask: number): string[] {
  const out: string[] = [];
  if (mask & MASK.ackRequired) out.push('ack');
  if (mask & MASK.exclusive) out.push('exclusive');
  if (mask & MASK.deleteOnExit) out.push('delete-on-exit');
  if (mask & MASK.pause) out.push('paused');
  return out;
}
