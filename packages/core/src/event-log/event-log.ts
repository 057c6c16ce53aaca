import type { ExpectedVersion } from '../errors/concurrency-error.ts';
import { ValidationError, type ValidationIssue } from '../errors/cqrs-error.ts';
import type { AnyEvent } from '../messages/message.ts';
import type { ContentEncoding, OutboxRecordInput } from '../outbox/outbox-record.ts';

/**
 * The event log: the outbox table read as an ordered, replayable log of every event the application appended.
 *
 * Every row of the outbox has a **position**. Positions are opaque strings of digits (`'0'` is the start of the
 * log); within one store they increase in the order a reader may consume them, and compare as strings
 * (zero-padded): `a < b` means `a` comes first. A reader that checkpoints the position of each batch and
 * resumes after it never skips an event, also one whose transaction committed after a later one:
 * {@link EventLogCapabilities.positions} says how each store makes sure of that.
 * @module
 */

/** The position before the first event of every log. */
export const LOG_START = '0';

/** Largest `limit` of one read. */
export const MAX_LOG_BATCH = 10_000;
/** `limit` of a read that names none. */
export const DEFAULT_LOG_BATCH = 500;
/** Longest stream id, in UTF-16 code units. */
export const MAX_STREAM_ID_LENGTH = 255;
/** Most event types one filtered read names. */
export const MAX_LOG_TYPES = 100;

/**
 * How a store makes positions safe to checkpoint on:
 * - `snapshot`: PostgreSQL. Positions are (transaction id, sequence); a read returns only rows of transactions
 *   older than every transaction still running (`pg_snapshot_xmin`), so a late commit always gets a position
 *   after the reader's checkpoint. A long-running write transaction anywhere on the server holds readers back.
 * - `high-water-mark`: MariaDB/MySQL. Positions are the sequence; a read stops at the first missing sequence
 *   until the transaction that took it ends (a locking probe waits for it) and, for a sequence that never
 *   appears (rolled back), until it has been missing for the store's gap timeout. Readers lag by the commit
 *   time of the slowest writer, plus the gap timeout once per rolled-back append.
 * - `single-writer`: SQLite and the in-memory store. One transaction writes at a time, so sequence order is
 *   commit order.
 * - `none`: positions may skip late commits; a reader must not rely on them.
 */
export const LOG_POSITION_GUARANTEES = ['snapshot', 'high-water-mark', 'single-writer', 'none'] as const;
export type LogPositionGuarantee = (typeof LOG_POSITION_GUARANTEES)[number];

/** What a log store declares about itself. */
export interface EventLogCapabilities {
  readonly positions: LogPositionGuarantee;
  /**
   * `true` when purging moves published events to an archive the log still reads (the store was created with
   * `archive: true`); `false` when purging deletes published events that belong to no stream.
   */
  readonly archive: boolean;
}

/** One event of the log, as stored. `payload` is the serialized data, compressed per `contentEncoding`. */
export interface EventLogEntry {
  readonly position: string;
  /** The event's `metadata.requestId`. */
  readonly id: string;
  readonly type: string;
  readonly topic: string;
  readonly key: string | null;
  /** The stream the event was appended to, `null` for an event appended to the outbox alone. */
  readonly streamId: string | null;
  /** 1 for the first event of a stream; `null` without a stream. */
  readonly streamVersion: number | null;
  readonly payload: Uint8Array;
  /** CloudEvents context attributes. */
  readonly headers: Readonly<Record<string, string>>;
  readonly contentEncoding: ContentEncoding;
  /** Epoch ms. */
  readonly createdAt: number;
}

/** Arguments of {@link EventLog.read}. */
export interface LogReadRequest {
  /** Read events after this position (exclusive). @default LOG_START */
  readonly after?: string;
  /** At most this many events, 1 to {@link MAX_LOG_BATCH}. @default 500 */
  readonly limit?: number;
  /** Only events of these types (1 to {@link MAX_LOG_TYPES} names). Default: every type. */
  readonly types?: readonly string[];
}

/** What {@link EventLog.read} returns. */
export interface LogBatch {
  readonly entries: readonly EventLogEntry[];
  /**
   * The checkpoint to read after next time: the last entry's position, or further when a filtered read scanned
   * past events it left out. Equal to the request's `after` when nothing more is readable yet.
   */
  readonly position: string;
  /**
   * Events are committed past what this read could return, held back by an older transaction still open (the
   * `snapshot` guarantee): they become readable when it ends, which no append announces, so read again soon.
   * Logs that never hold events back leave it out.
   */
  readonly held?: boolean;
}

/** Arguments of {@link EventLog.readStream}. */
export interface StreamReadOptions {
  /** First stream version to return. @default 1 */
  readonly fromVersion?: number;
  /** At most this many events, 1 to {@link MAX_LOG_BATCH}. @default 500 */
  readonly limit?: number;
}

/**
 * Read access to the event log, for the read side (projections, subscriptions, replays). Reads run on the
 * store's own connection, outside any transaction of the caller.
 */
export interface EventLog {
  readonly capabilities: EventLogCapabilities;
  /**
   * Events after `after`, in position order, in a bounded batch.
   * @throws ValidationError (`CQRS_VALIDATION`) for a malformed position, limit or type list; StorageError
   *   (`CQRS_STORAGE`) for database failures.
   */
  read(request?: LogReadRequest): Promise<LogBatch>;
  /**
   * Events of one stream by stream version, in a bounded batch.
   * @throws ValidationError (`CQRS_VALIDATION`) for a malformed stream id, version or limit.
   */
  readStream(streamId: string, options?: StreamReadOptions): Promise<readonly EventLogEntry[]>;
}

/** A stream's state saved with its version, so loading replays only the events after it. */
export interface StreamSnapshot {
  /** The stream version the state includes. */
  readonly version: number;
  /** The serialized state (the repository's encoding). */
  readonly state: string;
}

/** Arguments of {@link EventStore.loadStream}. */
export interface StreamLoadOptions {
  /** First version to return; with `useSnapshot`, the events after the snapshot when that is later. @default 1 */
  readonly fromVersion?: number;
  /** Return the stored snapshot and start after it. @default false */
  readonly useSnapshot?: boolean;
  /** At most this many events. @default 500 */
  readonly limit?: number;
}

/** What {@link EventStore.loadStream} returns. */
export interface LoadedStream {
  /** The stream's current version: the number of its events, 0 when it does not exist. */
  readonly version: number;
  readonly snapshot: StreamSnapshot | undefined;
  /** Events from the first version asked (or after the snapshot), ascending, at most `limit`. */
  readonly events: readonly EventLogEntry[];
}

/** Arguments of {@link EventStore.appendToStream}. */
export interface StreamAppendOptions {
  readonly expectedVersion: ExpectedVersion;
  /**
   * Store this snapshot with the append. Needs a numeric `expectedVersion`; its version must be the stream's
   * version after the append (`expectedVersion + events.length`).
   */
  readonly snapshot?: StreamSnapshot;
}

/** What {@link EventStore.appendToStream} returns. */
export interface StreamAppendResult {
  /** The stream's version after the append. */
  readonly version: number;
}

/**
 * The event log plus streams: the port an event-sourced repository writes through. A stream is the events of
 * one aggregate, numbered 1, 2, … (the stream version), unique per stream. Appends run in the caller's
 * transaction `TTx` and write to the outbox table, so the relay publishes them like any other event.
 * @typeParam TTx - the transaction handle of the caller's driver.
 */
export interface EventStore<TTx = unknown> extends EventLog {
  /**
   * The stream's version, snapshot and events, read in the caller's transaction (so it sees the transaction's
   * own appends).
   * @throws ValidationError (`CQRS_VALIDATION`) for a malformed stream id or option.
   */
  loadStream(tx: TTx, streamId: string, options?: StreamLoadOptions): Promise<LoadedStream>;
  /**
   * Appends events to a stream in the caller's transaction after checking `expectedVersion`, and stores the
   * snapshot when given. A concurrent writer of the same stream waits for this transaction; the loser of a race
   * gets a ConcurrencyError and writes nothing.
   * @throws ConcurrencyError (`CQRS_CONCURRENCY`, with the expected and actual versions), ValidationError
   *   (`CQRS_VALIDATION`) for a malformed stream id, expectation or snapshot, the outbox errors of `append`
   *   (PayloadTooLargeError, SerializationError, OutboxError), StorageError (`CQRS_STORAGE`).
   */
  appendToStream(
    tx: TTx,
    streamId: string,
    events: readonly AnyEvent[],
    options: StreamAppendOptions,
  ): Promise<StreamAppendResult>;
}

const DIGITS = /^\d{1,20}$/;
const MAX_U64 = 18_446_744_073_709_551_615n;

/** Pads each part to 20 digits and joins them with `.`, so positions of one store compare as strings. */
export function formatLogPosition(...parts: readonly (bigint | number | string)[]): string {
  return parts.map((p) => String(p).padStart(20, '0')).join('.');
}

/** Orders two positions of one store: negative when `a` comes first, 0 when equal, positive otherwise. */
export function compareLogPositions(a: string, b: string): number {
  const pa = parseParts(a);
  const pb = parseParts(b);
  if (pa === undefined || pb === undefined)
    throw invalid('compareLogPositions', [issue(['position'], 'must be a log position', 'invalid_position')]);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const x = pa[i] ?? 0n;
    const y = pb[i] ?? 0n;
    if (x !== y) return x < y ? -1 : 1;
  }
  return 0;
}

function parseParts(position: unknown): bigint[] | undefined {
  if (typeof position !== 'string' || position.length > 41) return undefined;
  const parts = position.split('.');
  if (parts.length > 2) return undefined;
  const out: bigint[] = [];
  for (const p of parts) {
    if (!DIGITS.test(p)) return undefined;
    const n = BigInt(p);
    if (n > MAX_U64) return undefined;
    out.push(n);
  }
  return out;
}

const issue = (path: (string | number)[], message: string, code: string): ValidationIssue => ({
  path,
  message,
  code,
});
const invalid = (what: string, issues: ValidationIssue[]) => new ValidationError(what, issues);

/**
 * Parses a position into `parts` numbers (missing trailing parts are 0; `'0'` is the start).
 * @throws ValidationError (`CQRS_VALIDATION`) for anything else, e.g. a position of a store with more parts.
 */
export function parseLogPosition(position: unknown, parts: 1 | 2, what = 'event log read'): bigint[] {
  const p = parseParts(position);
  if (p === undefined || p.length > parts || (p.length < parts && !(p.length === 1 && p[0] === 0n))) {
    throw invalid(what, [
      issue(
        ['after'],
        `must be a position of this log (${parts === 1 ? 'digits' : 'digits.digits'}, or '0' for the start); got ${JSON.stringify(String(position).slice(0, 60))}`,
        'invalid_position',
      ),
    ]);
  }
  while (p.length < parts) p.push(0n);
  return p;
}

/** A read request with its defaults applied. */
export interface CheckedLogRead {
  readonly after: string;
  readonly limit: number;
  readonly types: readonly string[] | undefined;
}

const storable = (s: string) => s.isWellFormed() && !s.includes('\0');

/**
 * Checks a {@link LogReadRequest} (position syntax is checked by the store with {@link parseLogPosition}).
 * @throws ValidationError (`CQRS_VALIDATION`) listing every problem
 */
export function checkLogRead(request: LogReadRequest | undefined): CheckedLogRead {
  const issues: ValidationIssue[] = [];
  if (request !== undefined && (request === null || typeof request !== 'object')) {
    throw invalid('event log read', [issue([], 'must be an object', 'invalid_type')]);
  }
  const after = request?.after ?? LOG_START;
  if (typeof after !== 'string' || parseParts(after) === undefined) {
    issues.push(issue(['after'], 'must be a log position', 'invalid_position'));
  }
  const limit = checkLimit(request?.limit, issues);
  let types: readonly string[] | undefined;
  if (request?.types !== undefined) {
    const t = request.types as unknown;
    if (!Array.isArray(t) || t.length === 0 || t.length > MAX_LOG_TYPES) {
      issues.push(issue(['types'], `must be an array of 1 to ${MAX_LOG_TYPES} event types`, 'invalid_type'));
    } else {
      t.forEach((v: unknown, i) => {
        if (typeof v !== 'string' || v.length === 0 || v.length > 255 || !storable(v)) {
          issues.push(issue(['types', i], 'must be an event type (1 to 255 characters)', 'invalid_type'));
        }
      });
      types = [...new Set(t as string[])];
    }
  }
  if (issues.length > 0) throw invalid('event log read', issues);
  return { after, limit, types };
}

function checkLimit(value: unknown, issues: ValidationIssue[], path = 'limit'): number {
  if (value === undefined) return DEFAULT_LOG_BATCH;
  if (!Number.isSafeInteger(value) || (value as number) < 1 || (value as number) > MAX_LOG_BATCH) {
    issues.push(issue([path], `must be an integer from 1 to ${MAX_LOG_BATCH}`, 'invalid_limit'));
    return DEFAULT_LOG_BATCH;
  }
  return value as number;
}

/** @throws ValidationError (`CQRS_VALIDATION`) unless `streamId` is 1 to 255 characters of storable text. */
export function checkStreamId(streamId: unknown, what: string): string {
  if (
    typeof streamId !== 'string' ||
    streamId.length === 0 ||
    streamId.length > MAX_STREAM_ID_LENGTH ||
    !storable(streamId)
  ) {
    throw invalid(what, [
      issue(
        ['streamId'],
        `must be 1 to ${MAX_STREAM_ID_LENGTH} characters of well-formed text without NUL`,
        'invalid_stream_id',
      ),
    ]);
  }
  return streamId;
}

/** A stream read with its defaults applied. */
export interface CheckedStreamRead {
  readonly streamId: string;
  readonly fromVersion: number;
  readonly limit: number;
  readonly useSnapshot: boolean;
}

/**
 * Checks the arguments of `readStream` and `loadStream`.
 * @throws ValidationError (`CQRS_VALIDATION`)
 */
export function checkStreamRead(
  streamId: unknown,
  options: StreamLoadOptions | undefined,
  what = 'stream read',
): CheckedStreamRead {
  const id = checkStreamId(streamId, what);
  const issues: ValidationIssue[] = [];
  if (options !== undefined && (options === null || typeof options !== 'object')) {
    throw invalid(what, [issue([], 'options must be an object', 'invalid_type')]);
  }
  const fromVersion = options?.fromVersion ?? 1;
  if (!Number.isSafeInteger(fromVersion) || fromVersion < 1) {
    issues.push(issue(['fromVersion'], 'must be an integer >= 1', 'invalid_version'));
  }
  const limit = checkLimit(options?.limit, issues);
  const useSnapshot = options?.useSnapshot ?? false;
  if (typeof useSnapshot !== 'boolean')
    issues.push(issue(['useSnapshot'], 'must be a boolean', 'invalid_type'));
  if (issues.length > 0) throw invalid(what, issues);
  return { streamId: id, fromVersion, limit, useSnapshot };
}

/** An append's arguments, checked. */
export interface CheckedStreamAppend {
  readonly streamId: string;
  readonly expected: ExpectedVersion;
  readonly snapshot: StreamSnapshot | undefined;
}

/** Largest serialized snapshot state accepted by default, in UTF-16 code units. */
export const MAX_SNAPSHOT_LENGTH = 16 * 1024 * 1024;

/**
 * Checks the arguments of `appendToStream` (events are checked by the outbox encoder).
 * @throws ValidationError (`CQRS_VALIDATION`)
 */
export function checkStreamAppend(
  streamId: unknown,
  events: unknown,
  options: StreamAppendOptions | undefined,
): CheckedStreamAppend {
  const id = checkStreamId(streamId, 'stream append');
  const issues: ValidationIssue[] = [];
  if (!Array.isArray(events)) issues.push(issue(['events'], 'must be an array of events', 'invalid_type'));
  const expected = (options as { expectedVersion?: unknown } | undefined)?.expectedVersion;
  if (
    !(
      expected === 'no-stream' ||
      expected === 'stream-exists' ||
      expected === 'any' ||
      (Number.isSafeInteger(expected) && (expected as number) >= 0)
    )
  ) {
    issues.push(
      issue(
        ['expectedVersion'],
        "must be a version (integer >= 0), 'no-stream', 'stream-exists' or 'any'",
        'invalid_expected_version',
      ),
    );
  }
  const snapshot = options?.snapshot;
  if (snapshot !== undefined) {
    if (typeof expected !== 'number') {
      issues.push(
        issue(
          ['snapshot'],
          'needs a numeric expectedVersion (the version it is saved at)',
          'invalid_snapshot',
        ),
      );
    } else if (Array.isArray(events) && snapshot?.version !== expected + events.length) {
      issues.push(
        issue(
          ['snapshot', 'version'],
          `must be the version after the append (${expected + (events as unknown[]).length})`,
          'invalid_version',
        ),
      );
    }
    if (
      snapshot === null ||
      typeof snapshot !== 'object' ||
      !Number.isSafeInteger(snapshot.version) ||
      snapshot.version < 1
    ) {
      issues.push(issue(['snapshot', 'version'], 'must be an integer >= 1', 'invalid_version'));
    }
    if (typeof snapshot?.state !== 'string' || !storable(snapshot.state)) {
      issues.push(issue(['snapshot', 'state'], 'must be well-formed text without NUL', 'invalid_type'));
    } else if (snapshot.state.length > MAX_SNAPSHOT_LENGTH) {
      issues.push(issue(['snapshot', 'state'], `is longer than ${MAX_SNAPSHOT_LENGTH}`, 'too_big'));
    }
  }
  if (issues.length > 0) throw invalid('stream append', issues);
  return { streamId: id, expected: expected as ExpectedVersion, snapshot };
}

/**
 * A stream event's outbox row: an event without an ordering key is keyed by its stream id (also as the
 * CloudEvents `subject` and `partitionkey`), so the relay publishes a stream's events in order.
 */
export function keyedByStream<TRecord extends OutboxRecordInput>(record: TRecord, streamId: string): TRecord {
  if (record.key !== null) return record;
  return {
    ...record,
    key: streamId,
    headers: { ...record.headers, subject: streamId, partitionkey: streamId },
  };
}

/**
 * True when a stream (or row) at `version` (`undefined`: it does not exist) meets `expected`: `'any'` always,
 * `'stream-exists'` when it exists, `0` or `'no-stream'` when it does not, a version when it is at that version.
 */
export function expectationMet(expected: ExpectedVersion, version: number | undefined): boolean {
  if (expected === 'any') return true;
  if (expected === 'stream-exists') return version !== undefined;
  if (expected === 'no-stream' || expected === 0) return version === undefined;
  return version === expected;
}
