// Small canvas line charts: a sparkline per topic row and a larger chart of the server's totals.
import type { Ring } from './model.js';

export const IN_COLOR = '#2f6fdf';
export const OUT_COLOR = '#1f9d62';

function fit(canvas: HTMLCanvasElement): CanvasRenderingContext2D | null {
  const dpr = globalThis.devicePixelRatio || 1;
  const w = canvas.clientWidth || Number(canvas.getAttribute('width')) || 100;
  const h = canvas.clientHeight || Number(canvas.getAttribute('height')) || 24;
  if (canvas.width !== Math.round(w * dpr) || canvas.height !== Math.round(h * dpr)) {
    canvas.width = Math.round(w * dpr);
    canvas.height = Math.round(h * dpr);
  }
  const ctx = canvas.getContext('2d');
  if (ctx === null) return null;
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.clearRect(0, 0, w, h);
  return ctx;
}

function line(
  ctx: CanvasRenderingContext2D,
  ring: Ring,
  capacity: number,
  max: number,
  x0: number,
  y0: number,
  w: number,
  h: number,
  color: string,
  fill: boolean,
): void {
  const n = ring.size;
  if (n === 0) return;
  const step = w / Math.max(1, capacity - 1);
  const xStart = x0 + w - (n - 1) * step;
  ctx.beginPath();
  for (let i = 0; i < n; i++) {
    const x = xStart + i * step;
    const y = y0 + h - (max > 0 ? (ring.at(i) / max) * h : 0);
    if (i === 0) ctx.moveTo(x, y);
    else ctx.lineTo(x, y);
  }
  ctx.strokeStyle = color;
  ctx.lineWidth = 1.25;
  ctx.stroke();
  if (fill) {
    ctx.lineTo(x0 + w, y0 + h);
    ctx.lineTo(xStart, y0 + h);
    ctx.closePath();
    ctx.globalAlpha = 0.12;
    ctx.fillStyle = color;
    ctx.fill();
    ctx.globalAlpha = 1;
  }
}

/**
 * Samples across the x axis: the history so far, at least 30 (one minute at one sample per 2 s) so that a
 * fresh page does not squeeze its first points against the right edge, at most `capacity`.
 */
function span(inRing: Ring, outRing: Ring, capacity: number): number {
  return Math.min(capacity, Math.max(30, inRing.size, outRing.size));
}

/** In and out rates on one shared scale. */
export function sparkline(canvas: HTMLCanvasElement, inRing: Ring, outRing: Ring, capacity: number): void {
  const ctx = fit(canvas);
  if (ctx === null) return;
  const w = canvas.clientWidth || 96;
  const h = canvas.clientHeight || 22;
  const max = Math.max(inRing.max(), outRing.max());
  const n = span(inRing, outRing, capacity);
  ctx.strokeStyle = '#e3e6ec';
  ctx.beginPath();
  ctx.moveTo(0, h - 0.5);
  ctx.lineTo(w, h - 0.5);
  ctx.stroke();
  line(ctx, inRing, n, max, 1, 2, w - 2, h - 3, IN_COLOR, true);
  line(ctx, outRing, n, max, 1, 2, w - 2, h - 3, OUT_COLOR, false);
}

/** The totals chart: grid lines, a max label, both series. */
export function areaChart(
  canvas: HTMLCanvasElement,
  inRing: Ring,
  outRing: Ring,
  capacity: number,
  fmt: (v: number) => string,
): void {
  const ctx = fit(canvas);
  if (ctx === null) return;
  const w = canvas.clientWidth || 600;
  const h = canvas.clientHeight || 90;
  const max = Math.max(1, inRing.max(), outRing.max());
  const top = 14;
  const plotH = h - top - 4;
  ctx.font = '11px system-ui, sans-serif';
  ctx.fillStyle = '#6b7385';
  ctx.strokeStyle = '#eceef3';
  ctx.lineWidth = 1;
  for (let i = 0; i <= 2; i++) {
    const y = Math.round(top + (plotH * i) / 2) + 0.5;
    ctx.beginPath();
    ctx.moveTo(0, y);
    ctx.lineTo(w, y);
    ctx.stroke();
  }
  ctx.fillText(`${fmt(max)}/s`, 2, 10);
  const n = span(inRing, outRing, capacity);
  const label = `last ${Math.max(1, Math.round((n * 2) / 60))} min`;
  ctx.fillText(label, w - ctx.measureText(label).width - 2, 10);
  line(ctx, inRing, n, max, 0, top, w, plotH, IN_COLOR, true);
  line(ctx, outRing, n, max, 0, top, w, plotH, OUT_COLOR, true);
}
