// Ids of fast-path publishes, made 64 at a time: the hex of 64 random 128-bit values is written into one buffer as a
// JSON array, which JSON.parse turns into 64 strings in one call. Not slices of one string: V8 makes a substring of
// 13+ characters a view that keeps its whole parent (2.3 KB) alive as long as the id lives, and hashing and
// encoding a view cost more. Per id with its pending-map insert and its copy into the head (cachegrind): 4,135
// instructions, against 4,457 for slices and 5,297 for the core's newId (36 char codes per id). Same shape and
// randomness as newId: a UUID-shaped string of 128 bits from the platform's CSPRNG.
const IDS = 64;
const ID_LENGTH = 36;
const HEX = Buffer.from('0123456789abcdef', 'latin1');
const idRandom = new Uint8Array(IDS * 16);
/** `["<id>","<id>",...]` */
const idText = Buffer.allocUnsafeSlow(IDS * (ID_LENGTH + 3) + 1);
let ids: string[] = [];
let idsTaken = IDS;

/** The next fast-path id (exported for its test). */
export function nextId(): string {
  if (idsTaken === IDS) {
    globalThis.crypto.getRandomValues(idRandom);
    idText[0] = 91; // '['
    for (let r = 0, o = 1; r < idRandom.length; r++) {
      const i = r & 15;
      // '"' opens an id, '-' parts it
      if (i === 0) idText[o++] = 34;
      else if (i === 4 || i === 6 || i === 8 || i === 10) idText[o++] = 45;
      const b = idRandom[r] as number;
      idText[o++] = HEX[b >> 4] as number;
      idText[o++] = HEX[b & 15] as number;
      if (i === 15) {
        idText[o++] = 34;
        idText[o++] = r === idRandom.length - 1 ? 93 : 44; // ']' or ','
      }
    }
    ids = JSON.parse(idText.toString('latin1')) as string[];
    idsTaken = 0;
  }
  return ids[idsTaken++] as string;
}

/**
 * Whether `id` has the text of the last id nextId gave: hex digits and dashes, so the transport writes it without
 * checking each character (putAscii's loop: 1,673 instructions for 36 characters, Buffer#write: 959).
 */
export function isLastId(id: string): boolean {
  return id === ids[idsTaken - 1];
}
