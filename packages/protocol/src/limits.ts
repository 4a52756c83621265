import { ZbusError } from './errors.js';

/** Limits the decoder enforces before it buffers anything. All sizes are bytes. */
export interface DecoderLimits {
  /** Start line + header lines + blank line. @default 65536 (64 KiB) */
  maxHeaderBytes?: number;
  /** Header lines per message. @default 256 */
  maxHeaderCount?: number;
  /** Body bytes (content-length, or the sum of chunks). @default 16777216 (16 MiB) */
  maxBodyBytes?: number;
  /** Request target (URL) bytes. @default 8192 (8 KiB) */
  maxUrlBytes?: number;
}

/** The default limits. */
export const DEFAULT_LIMITS: Readonly<Required<DecoderLimits>> = Object.freeze({
  maxHeaderBytes: 64 * 1024, // 64 KiB
  maxHeaderCount: 256,
  maxBodyBytes: 16 * 1024 * 1024, // 16 MiB
  maxUrlBytes: 8 * 1024, // 8 KiB
});

/** Spreads `limits` over the defaults and rejects values that are not positive integers. */
export function resolveLimits(limits?: DecoderLimits): Required<DecoderLimits> {
  if (limits === undefined) return DEFAULT_LIMITS;
  const out = { ...DEFAULT_LIMITS };
  for (const key of Object.keys(DEFAULT_LIMITS) as (keyof DecoderLimits)[]) {
    const v = limits[key];
    if (v === undefined) continue;
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v <= 0) {
      throw new ZbusError('ZBUS_ERR_INVALID_ARGUMENT', `${key} must be a positive integer, got ${String(v)}`);
    }
    out[key] = v;
  }
  return Object.freeze(out);
}
