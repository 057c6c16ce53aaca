import type { OutboxRecord } from '../outbox/outbox-record.ts';

const EMPTY_HEADERS: Readonly<Record<string, string>> = Object.freeze({});

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
 * {@link OutboxRecord}. Shared by the SQL adapters.
 */
export function outboxRecordFromRow(r: Readonly<Record<string, unknown>>): OutboxRecord {
  return {
    seq: Number(r.seq),
    id: r.id as string,
    type: r.type as string,
    topic: r.topic as string,
    key: (r.key as string | null) ?? null,
    payload: r.payload as Uint8Array,
    headers: parseHeaders(r.headers),
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
}
