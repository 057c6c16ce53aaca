import type { AnyEvent } from '../messages/message.ts';
import type { OutboxRecord } from './outbox-record.ts';

/** Arguments of {@link OutboxStore.claimBatch}. */
export interface ClaimBatchRequest {
  /** Identifies the claiming relay; stored as `claimed_by`. */
  readonly relayId: string;
  /** At most this many records. */
  readonly limit: number;
  /** The lease length: other relays may reclaim the records after `now + leaseMs`. */
  readonly leaseMs: number;
  /** Current time, epoch ms. */
  readonly now: number;
}

/** One failed publish to record; computed by the relay (it owns backoff and max attempts). */
export interface OutboxFailure {
  readonly id: string;
  readonly error: string;
  /** `true`: move to `dead`; otherwise stays `pending` until `nextAttemptAt`. */
  readonly dead: boolean;
  readonly nextAttemptAt: number;
}

/** Arguments of {@link OutboxStore.processLocked}. */
export interface LockedBatchRequest {
  /** At most this many records. */
  readonly limit: number;
  /** Current time, epoch ms. */
  readonly now: number;
  /**
   * Seqs of the records the relay's previous cycle holds (locked by its transaction, still publishing or
   * committing): they do not block their keys, so this batch may hold later records of the same keys. The relay
   * publishes this batch only once those went out whole, and commits it only after their commit; otherwise it
   * rolls back. Honoured by stores with {@link OutboxStore.overlapsLocked}; the relay sends it only to them.
   * @default []
   */
  readonly committing?: readonly number[];
}

/** What the relay did with a locked batch; records in neither list stay pending, untouched. */
export interface LockedBatchOutcome {
  readonly published: readonly string[];
  readonly failures: readonly OutboxFailure[];
  /** Epoch ms written as `published_at`. */
  readonly publishedAt: number;
}

/** Backlog figures of a store. */
export interface OutboxStats {
  /** Pending records (including claimed and backing-off ones). */
  readonly backlog: number;
  /** Age of the oldest pending record in ms, 0 when none. */
  readonly oldestPendingAgeMs: number;
  readonly dead: number;
}

/** Arguments of {@link OutboxStore.publishedCounts}: `buckets` consecutive windows of `bucketMs` from `since`. */
export interface PublishedCountsRequest {
  /** Start of the first window, epoch ms. */
  readonly since: number;
  /** Width of each window in ms (>= 1). */
  readonly bucketMs: number;
  /** How many windows (1 to 1000). */
  readonly buckets: number;
}

/** Which rows {@link OutboxStore.purge} deletes. */
export interface OutboxPurgeRequest {
  /** Delete published records published before this time (epoch ms). */
  readonly publishedBefore: number;
  /** Also delete dead records created before this time; kept when omitted. */
  readonly deadBefore?: number;
}

/**
 * Port of the transactional outbox table.
 *
 * `append` writes inside the caller's transaction `TTx`, so events commit or roll back with the business data.
 * Every other method runs on the store's own connection and is used by the relay.
 *
 * Ordering contract of `claimBatch`: a record is returned only if every earlier pending record with the same
 * key is returned in the same batch; claimed records are leased to the relay until `now + leaseMs`.
 * @typeParam TTx - the transaction handle of the caller's driver.
 */
export interface OutboxStore<TTx = unknown> {
  /**
   * Serializes and inserts events in the caller's transaction, all or none.
   * @throws PayloadTooLargeError (`CQRS_PAYLOAD_TOO_LARGE`), SerializationError (`CQRS_SERIALIZATION`),
   *   OutboxError (`CQRS_OUTBOX`) for a non-event, StorageError (`CQRS_STORAGE`) for database failures.
   */
  append(tx: TTx, events: readonly AnyEvent[]): Promise<void>;
  /** Leases up to `limit` due records honouring per-key order; sorted by `seq`. */
  claimBatch(request: ClaimBatchRequest): Promise<readonly OutboxRecord[]>;
  /**
   * Optional single-transaction cycle, used by the relay in `transaction` mode: opens a transaction, locks up to
   * `limit` due, unleased records (skipping rows other transactions hold, same ordering contract as
   * `claimBatch`), calls `process` with them while the locks are held, writes its outcome in the same
   * transaction and commits. `process` returning `undefined` rolls back (nothing changes). A relay that dies
   * mid-cycle loses its connection, the transaction rolls back and the rows are due again: no lease is written.
   * Resolves to the number of records that were locked.
   */
  processLocked?(
    request: LockedBatchRequest,
    process: (records: readonly OutboxRecord[]) => Promise<LockedBatchOutcome | undefined>,
  ): Promise<number>;
  /**
   * Optional: `processLocked` honours `request.committing`, so while a backlog drains the relay locks the next
   * batch while the previous one publishes, and publishes it while the previous one commits (up to three
   * transactions, and connections, at once).
   */
  overlapsLocked?: boolean;
  /** Marks records published (one statement). */
  markPublished(ids: readonly string[], now: number): Promise<void>;
  /** Records failed attempts: increments attempts, sets error and next attempt, or moves to `dead`. */
  markFailed(failures: readonly OutboxFailure[]): Promise<void>;
  /** Gives up leases without counting an attempt. */
  release(ids: readonly string[]): Promise<void>;
  /** Dead records, oldest first. */
  listDeadLetters(options?: {
    readonly limit?: number;
    readonly afterSeq?: number;
  }): Promise<readonly OutboxRecord[]>;
  /** Puts dead records back to `pending` with zero attempts; returns how many. */
  replayDeadLetters(ids: readonly string[], now: number): Promise<number>;
  /** Deletes dead records; returns how many. */
  deleteDeadLetters(ids: readonly string[]): Promise<number>;
  stats(now: number): Promise<OutboxStats>;
  /**
   * Optional: how many records were published in each window (`[since + i * bucketMs, since + (i + 1) * bucketMs)`),
   * for throughput charts; records retention already deleted are not counted. One statement.
   */
  publishedCounts?(request: PublishedCountsRequest): Promise<readonly number[]>;
  /** Retention: deletes old published (and optionally dead) records; returns how many. */
  purge(request: OutboxPurgeRequest): Promise<number>;
}
