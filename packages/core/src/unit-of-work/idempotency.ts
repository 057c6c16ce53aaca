import { hash } from 'node:crypto';
import { CqrsError, SerializationError } from '../errors/cqrs-error.ts';
import { PayloadTooLargeError } from '../errors/storage-error.ts';
import type { AnyMessage } from '../messages/message.ts';

/** What an {@link IdempotencyStore} keeps for one idempotency key (a row of the inbox table). */
export interface IdempotencyRecord {
  /** Fingerprint of the command that ran: its type and payload. `null` for a row no unit of work wrote. */
  readonly fingerprint: string | null;
  /** The command's serialized result (see {@link encodeIdempotentResult}). */
  readonly result: string | null;
}

/**
 * Port of the idempotency records a unit of work keeps for commands that carry an idempotency key. The SQL
 * packages keep them in their inbox table: `message_id` is the scoped key's id, `consumer` is
 * {@link IDEMPOTENCY_CONSUMER}, with the `fingerprint` and `result` columns.
 * @typeParam TTx - the transaction handle of the store's driver.
 */
export interface IdempotencyStore<TTx = unknown> {
  /** Reads a committed record on the store's own connection, outside any transaction (the replay path). */
  find(id: string): Promise<IdempotencyRecord | undefined>;
  /**
   * Inserts the claim of `id` in `tx`. While another transaction holds a claim of the same id, waits for it to
   * end. Resolves to `undefined` when `tx` now holds the claim, or to the record another transaction committed.
   */
  claim(tx: TTx, id: string, fingerprint: string, now: number): Promise<IdempotencyRecord | undefined>;
  /** Stores the result of the command that claimed `id`, in the claiming transaction. */
  complete(tx: TTx, id: string, result: string): Promise<void>;
}

/** The inbox `consumer` value of idempotency records. Consumer names starting with `cqrs:` are reserved. */
export const IDEMPOTENCY_CONSUMER = 'cqrs:idempotency';

/** Largest serialized result a unit of work stores by default, in UTF-8 bytes. */
export const DEFAULT_MAX_RESULT_BYTES = 1_048_576;

/** The same idempotency key was sent again with another command type or payload. Nothing ran. */
export class IdempotencyConflictError extends CqrsError {
  readonly messageType: string;
  readonly idempotencyKey: string;
  constructor(messageType: string, idempotencyKey: string) {
    super(
      'CQRS_IDEMPOTENCY_CONFLICT',
      `${messageType}: idempotency key ${JSON.stringify(idempotencyKey.slice(0, 60))} was already used by a command with another type or payload`,
    );
    this.name = 'IdempotencyConflictError';
    this.messageType = messageType;
    this.idempotencyKey = idempotencyKey;
  }
}

/**
 * A command came with an idempotency key whose first command is still running in this process, and the caller
 * asked not to wait for it (`idempotency: { inFlight: 'reject' }`). Nothing ran; try again later.
 */
export class IdempotencyInFlightError extends CqrsError {
  readonly messageType: string;
  readonly idempotencyKey: string;
  constructor(messageType: string, idempotencyKey: string) {
    super(
      'CQRS_IDEMPOTENCY_IN_FLIGHT',
      `${messageType}: the command with idempotency key ${JSON.stringify(idempotencyKey.slice(0, 60))} is still running`,
    );
    this.name = 'IdempotencyInFlightError';
    this.messageType = messageType;
    this.idempotencyKey = idempotencyKey;
  }
}

// One-shot hash: several times faster than createHash() for short texts (two per keyed send).
const sha256 = (text: string): string => hash('sha256', text, 'hex');

/**
 * The id a key is stored under: a hash of the tenant and the key, so two tenants' keys never meet, any key fits
 * the inbox's `message_id` column, and a case-insensitive collation cannot merge two keys.
 */
export function idempotencyId(key: string, tenantId: string | undefined): string {
  return sha256(JSON.stringify([tenantId ?? null, key]));
}

/**
 * Fingerprint of a command: a hash of its type and of its payload as canonical JSON (keys sorted).
 * @throws SerializationError when the payload holds something JSON cannot express (a function, a bigint, a cycle).
 */
export function commandFingerprint(message: AnyMessage): string {
  let canonical: string;
  try {
    canonical = canonicalJson([message.type, message.payload], new Set());
  } catch (error) {
    throw new SerializationError(
      `${message.type}: the payload cannot be fingerprinted for its idempotency key: ${(error as Error).message}`,
      { cause: error },
    );
  }
  return sha256(canonical);
}

function canonicalJson(value: unknown, seen: Set<object>): string {
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return JSON.stringify(value);
    case 'number':
      if (!Number.isFinite(value)) throw new TypeError(`${value} is not a JSON number`);
      return JSON.stringify(value);
    case 'undefined':
      return 'null';
    case 'object': {
      if (value === null) return 'null';
      if (seen.has(value)) throw new TypeError('a cycle');
      if (value instanceof Uint8Array)
        return JSON.stringify({ $bytes: Buffer.from(value).toString('base64') });
      const json = (value as { toJSON?: unknown }).toJSON;
      if (typeof json === 'function') return canonicalJson(json.call(value), seen);
      seen.add(value);
      let out: string;
      if (Array.isArray(value)) out = `[${value.map((v) => canonicalJson(v, seen)).join(',')}]`;
      else {
        const proto = Object.getPrototypeOf(value);
        if (proto !== Object.prototype && proto !== null)
          throw new TypeError(`a ${(value as object).constructor?.name ?? 'non-plain'} object`);
        const keys = Object.keys(value).sort();
        const parts: string[] = [];
        for (const k of keys) {
          const v = (value as Record<string, unknown>)[k];
          if (v !== undefined) parts.push(`${JSON.stringify(k)}:${canonicalJson(v, seen)}`);
        }
        out = `{${parts.join(',')}}`;
      }
      seen.delete(value);
      return out;
    }
    default:
      throw new TypeError(`a ${typeof value}`);
  }
}

/** Why `value` would not come back the same from JSON, or `undefined` when it would. */
function notJsonSafe(value: unknown, path: string, seen: Set<object>): string | undefined {
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return undefined;
    case 'number':
      return Number.isFinite(value) ? undefined : `${path} is ${value}`;
    case 'object': {
      if (value === null) return undefined;
      if (seen.has(value)) return `${path} is a cycle`;
      seen.add(value);
      try {
        if (Array.isArray(value)) {
          for (let i = 0; i < value.length; i++) {
            if (!(i in value) || value[i] === undefined) return `${path}[${i}] is undefined`;
            const why = notJsonSafe(value[i], `${path}[${i}]`, seen);
            if (why) return why;
          }
          return undefined;
        }
        const proto = Object.getPrototypeOf(value);
        if (proto !== Object.prototype && proto !== null)
          return `${path} is a ${(value as object).constructor?.name ?? 'non-plain'} object`;
        for (const k of Object.keys(value)) {
          const v = (value as Record<string, unknown>)[k];
          if (v === undefined) continue;
          const why = notJsonSafe(v, `${path}.${k}`, seen);
          if (why) return why;
        }
        return undefined;
      } finally {
        seen.delete(value);
      }
    }
    default:
      return `${path} is a ${typeof value}`;
  }
}

/**
 * Serializes a command's result for replay: `[]` for `undefined`, `[value]` otherwise. A result that JSON
 * would change (a Date, a Map, a class instance, a bigint, NaN, a function, an array hole) is refused, so a
 * replay always returns what the first run returned.
 * @throws SerializationError (`CQRS_SERIALIZATION`), PayloadTooLargeError (`CQRS_PAYLOAD_TOO_LARGE`)
 */
export function encodeIdempotentResult(messageType: string, result: unknown, maxBytes: number): string {
  if (result === undefined) return '[]';
  const why = notJsonSafe(result, 'result', new Set());
  if (why !== undefined) {
    throw new SerializationError(
      `${messageType}: the result cannot be stored for idempotent replay (${why}); return plain JSON data`,
    );
  }
  const text = `[${JSON.stringify(result)}]`;
  const bytes = Buffer.byteLength(text, 'utf8');
  if (bytes > maxBytes) throw new PayloadTooLargeError(`${messageType} result`, bytes, maxBytes);
  return text;
}

/** Reads a result written by {@link encodeIdempotentResult}. @throws SerializationError for anything else. */
export function decodeIdempotentResult(messageType: string, text: string): unknown {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (cause) {
    throw new SerializationError(`${messageType}: the stored idempotent result is not JSON`, { cause });
  }
  if (!Array.isArray(parsed) || parsed.length > 1)
    throw new SerializationError(`${messageType}: the stored idempotent result is malformed`);
  return parsed.length === 0 ? undefined : parsed[0];
}
