import { getRandomValues } from 'node:crypto';

const HEX: string[] = [];
for (let i = 0; i < 256; i++) HEX.push(i.toString(16).padStart(2, '0'));

const POOL_SIZE = 16 * 256;
const pool = new Uint8Array(POOL_SIZE);
let poolOffset = POOL_SIZE;
let lastMs = -1;
let seq = 0;

/**
 * A UUID version 7 (RFC 9562): 48-bit Unix milliseconds, then a 12-bit counter that keeps ids
 * generated within one millisecond strictly increasing in this process, then random bits.
 */
export function uuidv7(): string {
  let ms = Date.now();
  if (ms > lastMs) {
    lastMs = ms;
    seq = 0;
  } else {
    seq++;
    if (seq > 0xfff) {
      lastMs++;
      seq = 0;
    }
    ms = lastMs;
  }
  if (poolOffset + 8 > POOL_SIZE) {
    getRandomValues(pool);
    poolOffset = 0;
  }
  const r = poolOffset;
  poolOffset += 8;
  const h = Math.floor(ms / 0x10000);
  const l = ms % 0x10000;
  return (
    HEX[(h >>> 24) & 0xff]! +
    HEX[(h >>> 16) & 0xff]! +
    HEX[(h >>> 8) & 0xff]! +
    HEX[h & 0xff]! +
    '-' +
    HEX[(l >>> 8) & 0xff]! +
    HEX[l & 0xff]! +
    '-' +
    HEX[0x70 | ((seq >>> 8) & 0x0f)]! +
    HEX[seq & 0xff]! +
    '-' +
    HEX[0x80 | (pool[r]! & 0x3f)]! +
    HEX[pool[r + 1]!]! +
    '-' +
    HEX[pool[r + 2]!]! +
    HEX[pool[r + 3]!]! +
    HEX[pool[r + 4]!]! +
    HEX[pool[r + 5]!]! +
    HEX[pool[r + 6]!]! +
    HEX[pool[r + 7]!]!
  );
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
