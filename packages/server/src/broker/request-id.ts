// Ids for requests that come without one (plain HTTP: curl, browsers, `ab`). They are random UUIDs (v4), as
// crypto.randomUUID() makes them, because an id decides deduplication: an id a client could predict would let it
// produce that id first and have another client's message dropped as a duplicate. So a counter (even behind a
// random per-process prefix, which the first reply would show) will not do. The random bytes come from the same
// CSPRNG, drawn 64 KiB at a time, and each id is written as one flat ASCII string (randomUUID builds it from 20
// concatenated pieces, which every later use flattens again).
import { randomFillSync } from 'node:crypto';

const IDS_PER_DRAW = 4096;
const random = Buffer.allocUnsafe(16 * IDS_PER_DRAW);
let next = IDS_PER_DRAW;
/** The id being written: 36 ASCII characters, dashes at 8, 13, 18 and 23. */
const text = Buffer.from('00000000-0000-4000-8000-000000000000', 'latin1');
/** Where each of the 16 bytes' two hex digits go in `text`. */
const AT = [0, 2, 4, 6, 9, 11, 14, 16, 19, 21, 24, 26, 28, 30, 32, 34];
const HEX = Buffer.from('0123456789abcdef', 'latin1');

/** A random UUID v4 (122 random bits), as crypto.randomUUID() returns. */
export function newRequestId(): string {
  if (next === IDS_PER_DRAW) {
    randomFillSync(random);
    next = 0;
  }
  const r = next++ * 16;
  for (let i = 0; i < 16; i++) {
    let b = random[r + i] as number;
    if (i === 6)
      b = (b & 0x0f) | 0x40; // version 4
    else if (i === 8) b = (b & 0x3f) | 0x80; // variant 10xx
    const at = AT[i] as number;
    text[at] = HEX[b >> 4] as number;
    text[at + 1] = HEX[b & 15] as number;
  }
  return text.toString('latin1', 0, 36);
}
