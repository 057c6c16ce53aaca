import type { EventLogEntry } from '../event-log/event-log.ts';
import { EMPTY_HEADERS, outboxHeadersProblem } from '../outbox/outbox-codec.ts';
import type { OutboxRecord } from '../outbox/outbox-record.ts';

const EMPTY_PAYLOAD = new Uint8Array(0);

/** Parses stored headers, which drivers return either as a JSON string or an object. */
export function parseHeaders(value: unknown): Readonly<Record<string, string>> {
  if (value === null || value === undefined) return EMPTY_HEADERS;
  if (typeof value === 'string') return JSON.parse(value) as Record<string, string>;
  if (value instanceof Uint8Array)
    return JSON.parse(new TextDecoder().decode(value)) as Record<string, string>;
  return value as Record<string, string>;
}

/**
 * Maps a row of an SQL outbox table (snake_case columns, as created by the adapters' migrations) to an
 * {@link OutboxRecord}. Shared by the SQL adapters. Never throws for a row's content: a row whose headers or
 * payload cannot be read comes back with `unreadable` set (the relay quarantines it), so one bad row never
 * blocks a claim or a dead-letter listing.
 */
export function outboxRecordFromRow(r: Readonly<Record<string, unknown>>): OutboxRecord {
  let headers: unknown;
  let unreadable: string | undefined;
  try {
    headers = parseHeaders(r.headers);
    unreadable = outboxHeadersProblem(headers);
  } catch (error) {
    unreadable = `headers are not valid JSON (${error instanceof Error ? error.message : String(error)})`;
  }
  let payload = r.payload as Uint8Array;
  if (!(payload instanceof Uint8Array)) {
    unreadable ??= `payload is not bytes (${payload === null ? 'null' : typeof payload})`;
    payload = EMPTY_PAYLOAD;
  }
  const record: { -readonly [K in keyof OutboxRecord]: OutboxRecord[K] } = {
    seq: Number(r.seq),
    id: r.id as string,
    type: r.type as string,
    topic: r.topic as string,
    key: (r.key as string | null) ?? null,
    payload,
    headers: unreadable === undefined ? (headers as Readonly<Record<string, string>>) : EMPTY_HEADERS,
    contentEncoding: r.content_encoding as OutboxRecord['contentEncoding'],
    status: r.status as OutboxRecord['status'],
    attempts: Number(r.attempts),
    nextAttemptAt: Number(r.next_attempt_at),
    lastError: (r.last_error as string | null) ?? null,
    createdAt: Number(r.created_at),
    publishedAt: r.published_at === null ? null : Number(r.published_at),
    claimedBy: (r.claimed_by as string | null) ?? null,
    claimedUntil: r.claimed_until === null ? null : Number(r.claimed_until),
  };
  if (unreadable !== undefined) record.unreadable = unreadable.slice(0, 500);
  return record;
}

/**
 * Maps a row of an SQL outbox table (or its archive) to an {@link EventLogEntry} at `position` (the store's
 * format of it). Shared by the SQL event stores.
 */
export function logEntryFromRow(r: Readonly<Record<string, unknown>>, position: string): EventLogEntry {
  return {
    position,
    id: r.id as string,
    type: r.type as string,
    topic: r.topic as string,
    key: (r.key as string | null) ?? null,
    streamId: (r.stream_id as string | null) ?? null,
    streamVersion:
      r.stream_version === null || r.stream_version === undefined ? null : Number(r.stream_version),
    payload: r.payload as Uint8Array,
    headers: parseHeaders(r.headers),
    contentEncoding: r.content_encoding as EventLogEntry['contentEncoding'],
    createdAt: Number(r.created_at),
  };
}
