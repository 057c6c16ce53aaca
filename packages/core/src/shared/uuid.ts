import { getRandomValues } from 'node:crypto';

const HEX: string[] = [];
for (let i = 0; i < 256; i++) HEX.push(i.toString(16).padStart(2, '0'));
const HEX1 = '0123456789abcdef';

// Random bytes are drawn 4 KiB at a time: one draw serves 512 milliseconds.
const POOL_SIZE = 4096;
const pool = new Uint8Array(POOL_SIZE);
let poolOffset = POOL_SIZE;
let lastMs = -1;
let seq = 0;
/** `tttttttt-tttt-7` for `lastMs`. */
let head = '';
/** `head` and the counter's first hex digit (`headDigit`): an id is then two concatenations, not three. */
let headSeq = '';
let headDigit = -1;
/** `-vrrr-rrrrrrrrrrrr`: the variant and 62 random bits, drawn again for every millisecond. */
let tail = '';

function startMillisecond(ms: number): void {
  const h = Math.floor(ms / 0x10000);
  const l = ms % 0x10000;
  head = `${HEX[(h >>> 24) & 0xff]!}${HEX[(h >>> 16) & 0xff]!}${HEX[(h >>> 8) & 0xff]!}${HEX[h & 0xff]!}-${HEX[(l >>> 8) & 0xff]!}${HEX[l & 0xff]!}-7`;
  if (poolOffset + 8 > POOL_SIZE) {
    getRandomValues(pool);
    poolOffset = 0;
  }
  const r = poolOffset;
  poolOffset += 8;
  const p = pool;
  headDigit = -1;
  tail = `-${HEX[0x80 | (p[r]! & 0x3f)]!}${HEX[p[r + 1]!]!}-${HEX[p[r + 2]!]!}${HEX[p[r + 3]!]!}${HEX[p[r + 4]!]!}${HEX[p[r + 5]!]!}${HEX[p[r + 6]!]!}${HEX[p[r + 7]!]!}`;
}

/**
 * A UUID version 7 (RFC 9562): 48-bit Unix milliseconds, a 12-bit counter that keeps the ids of one millisecond
 * strictly increasing in this process (RFC 9562 §6.2, method 1), then 62 random bits drawn once per millisecond.
 * Ids of one process never repeat and sort in creation order; ids of two processes can only collide when both
 * draw the same 62 random bits in the same millisecond. The text of a millisecond is built once, so an id costs
 * a counter increment and a concatenation.
 */
export function uuidv7(): string {
  return uuidv7At(Date.now());
}

/** @internal {@link uuidv7} for a clock reading the caller already took (epoch ms). */
export function uuidv7At(now: number): string {
  if (now > lastMs) {
    lastMs = now;
    seq = 0;
    startMillisecond(now);
  } else if (++seq > 0xfff) {
    // More than 4096 ids in one millisecond: borrow the next one (ids stay ordered).
    lastMs++;
    seq = 0;
    startMillisecond(lastMs);
  }
  const digit = seq >>> 8;
  if (digit !== headDigit) {
    headDigit = digit;
    headSeq = head + HEX1[digit]!;
  }
  return headSeq + (HEX[seq & 0xff]! + tail);
}

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[1-8][0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/i;

/** True for a canonical RFC 9562 UUID string (any version 1-8). */
export function isUuid(value: unknown): value is string {
  return typeof value === 'string' && value.length === 36 && UUID_RE.test(value);
}

/** Milliseconds since the epoch encoded in a UUID v7. */
export function uuidv7Time(id: string): number {
  return Number.parseInt(id.slice(0, 8) + id.slice(9, 13), 16);
}
