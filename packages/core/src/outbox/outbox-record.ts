/** Lifecycle of an outbox row: waiting (or retrying), delivered to the broker, or given up on. */
export const OUTBOX_STATUSES = ['pending', 'published', 'dead'] as const;
export type OutboxStatus = (typeof OUTBOX_STATUSES)[number];

/** How a record's payload bytes are encoded. `identity` is plain UTF-8 JSON. */
export const CONTENT_ENCODINGS = ['identity', 'gzip', 'br'] as const;
export type ContentEncoding = (typeof CONTENT_ENCODINGS)[number];

/** What a store inserts for one event; produced by {@link createOutboxEncoder}. Times are epoch ms (UTC). */
export interface OutboxRecordInput {
  /** The event's `metadata.requestId` (UUID v7). Unique per store. */
  readonly id: string;
  readonly type: string;
  readonly topic: string;
  /** Ordering key; events sharing a key are published in append order. `null`: no ordering. */
  readonly key: string | null;
  /** The serialized payload (the CloudEvents data), possibly compressed (see `contentEncoding`). */
  readonly payload: Uint8Array;
  /** CloudEvents context attributes (id, source, type, time, correlationid, traceparent, ...). */
  readonly headers: Readonly<Record<string, string>>;
  readonly contentEncoding: ContentEncoding;
  readonly createdAt: number;
}

/** One stored outbox row. Times are epoch milliseconds (UTC). */
export interface OutboxRecord extends OutboxRecordInput {
  /** Store-assigned, increasing append position; the publish order within a key. */
  readonly seq: number;
  readonly status: OutboxStatus;
  /** Failed publish attempts so far. */
  readonly attempts: number;
  /** Not claimed before this time (backoff). */
  readonly nextAttemptAt: number;
  readonly lastError: string | null;
  readonly publishedAt: number | null;
  /** The relay holding the lease, if any. */
  readonly claimedBy: string | null;
  /** The lease ends at this time; after it any relay may claim the row again. */
  readonly claimedUntil: number | null;
  /**
   * Set by a store that could not read this row's columns (e.g. `headers` that are not a JSON object): why.
   * The other fields then hold placeholders; the relay moves such a row to `dead` with this reason.
   */
  readonly unreadable?: string;
}
