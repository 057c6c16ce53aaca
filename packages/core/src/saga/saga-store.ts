/**
 * Port of saga storage (types only). The saga engine (`@cqrs-ts/saga`) drives it; storage adapters
 * (in-memory here, SQL in the database packages) implement it and certify themselves with the contract suite
 * `describeSagaStoreContract` of `@cqrs-ts/testing/contracts`.
 *
 * ## Data model
 * - One **saga row** per saga instance ({@link SagaRecord}): identity, status, serialized context, the forward
 *   cursor, an optimistic `version`, a lease (`leaseOwner`, `leaseUntil`), timestamps.
 * - An append-only **log** ({@link SagaLogEntry}): one row per finished act or compensate (completed or failed),
 *   ordered by a store-assigned `seq` that strictly increases in insertion order.
 *
 * All times are epoch milliseconds passed in by the caller (`now`); a store never reads its own clock, so tests
 * can control time. Text columns (`context`, `result`, `error`) are opaque JSON text to the store: it stores and
 * returns them byte for byte and never parses them (the engine does, and reports corrupted values itself).
 *
 * ## Concurrency
 * Every state change is guarded by `version` (optimistic concurrency) and by the lease owner. `acquire` bumps the
 * version, so it doubles as a fencing token: once another worker took over an expired lease, every write of the
 * previous worker (commit, renewal, release) fails and changes nothing; a commit throws a
 * {@link SagaConflictError} (`CQRS_CONCURRENCY`). A recovery worker passes the version it listed to `acquire`
 * (`expectedVersion`), so a saga another worker changed since (took, advanced or finished) is not taken again.
 *
 * ## Retry time of a failed compensation
 * A saga whose compensation kept failing is committed as `compensation_failed` with `lease: { retryAt }`: no
 * owner, and `leaseUntil` holds the time after which `findRecoverable` returns it again. A `compensation_failed`
 * saga with no owner and no `leaseUntil` waits for an operator.
 *
 * ## Round trips of one 3-step saga
 * `create` (1) + one `commit` per finished step (3; the last one also sets `completed` and releases the lease)
 * = 4 transactions. A SQL `commit` is one transaction: a guarded `UPDATE ... WHERE id = ? AND version = ? AND
 * lease_owner = ?` (zero rows updated means conflict: roll back and throw), the log `INSERT`s (one multi-row
 * statement) and, when `events` are given, the outbox `INSERT`s.
 *
 * Suggested SQL (Postgres flavour; adapt types): saga table `id TEXT PRIMARY KEY, name TEXT, definition_version
 * INT, status TEXT, context TEXT, cursor INT, version BIGINT, attempts INT, error TEXT NULL, lease_owner TEXT NULL,
 * lease_until BIGINT NULL, deadline_at BIGINT NULL, created_at BIGINT, updated_at BIGINT` with an index on
 * `(status, updated_at)`; log table `seq BIGSERIAL PRIMARY KEY, saga_id TEXT, step_id TEXT, slot INT, action TEXT,
 * status TEXT, attempts INT, result TEXT NULL, error TEXT NULL, started_at BIGINT, at BIGINT` with an index on
 * `(saga_id, seq)`. Table names configurable, validated like the outbox's.
 * @module
 */
import type { AnyEvent } from '../messages/message.ts';
import type { SagaConflictError } from './saga-errors.ts';

/**
 * Lifecycle of a saga instance.
 * - `running`: going forward (or interrupted while going forward: recoverable).
 * - `paused`: the caller stopped reading the step stream; resumable with `resume(id)`, never picked by recovery.
 * - `compensating`: undoing completed steps (or interrupted while doing so: recoverable). Never goes forward again.
 * - `completed`: every step completed. Terminal.
 * - `compensated`: a step failed (or the saga was aborted / passed its deadline) and every completed step was
 *   compensated. Terminal.
 * - `compensation_failed`: a compensation kept failing. Recovery takes it again from its retry time (see
 *   {@link SagaCommit.lease}); without one it needs attention. Listed by operators and resumable (continues
 *   compensating).
 * - `failed`: the engine could not handle the saga (e.g. a corrupted log row); needs attention, never recovered
 *   automatically.
 */
export type SagaStatus =
  | 'running'
  | 'paused'
  | 'compensating'
  | 'completed'
  | 'compensated'
  | 'compensation_failed'
  | 'failed';

/** Every {@link SagaStatus}, in lifecycle order. */
export const SAGA_STATUSES: readonly SagaStatus[] = Object.freeze([
  'running',
  'paused',
  'compensating',
  'completed',
  'compensated',
  'compensation_failed',
  'failed',
]);

/** What a log row records: the forward action or its compensation. */
export type SagaLogAction = 'act' | 'compensate';

/** Outcome of one logged action (after its retries). */
export type SagaLogStatus = 'completed' | 'failed';

/** One saga row, as a store returns it. Immutable snapshot. */
export interface SagaRecord {
  /** Saga instance id (a UUID v7 chosen by the engine). Primary key. */
  readonly id: string;
  /** Name of the saga definition. */
  readonly name: string;
  /** Version of the saga definition that started the instance. */
  readonly definitionVersion: number;
  readonly status: SagaStatus;
  /** The context as JSON text. */
  readonly context: string;
  /** Number of forward steps completed so far (index of the next forward step). */
  readonly cursor: number;
  /** Optimistic version: 1 after `create`, +1 on every `commit` and `acquire`. */
  readonly version: number;
  /** How many times a worker took the saga: 1 after `create`, +1 on every successful `acquire`. */
  readonly attempts: number;
  /** JSON text of the error that made the saga compensate or fail, `null` otherwise. */
  readonly error: string | null;
  /** Worker holding the lease, `null` when released. */
  readonly leaseOwner: string | null;
  /**
   * Lease expiry (epoch ms) while `leaseOwner` is set. With no owner: the retry time of a `compensation_failed`
   * saga (committed with `lease: { retryAt }`), else `null`.
   */
  readonly leaseUntil: number | null;
  /** Absolute deadline (epoch ms) after which the engine compensates, `null` for none. */
  readonly deadlineAt: number | null;
  readonly createdAt: number;
  /** Time of the last `create`, `commit` or `acquire` (epoch ms). Not changed by `renew` or `release`. */
  readonly updatedAt: number;
}

/** One log row, as a store returns it. */
export interface SagaLogEntry {
  /** Store-assigned sequence: strictly increasing in insertion order (a global sequence is fine). */
  readonly seq: number;
  readonly sagaId: string;
  /** Id of the step that ran (a fallback step logs its own id). */
  readonly stepId: string;
  /** Index of the step in the definition (a fallback shares its primary's slot). */
  readonly slot: number;
  readonly action: SagaLogAction;
  readonly status: SagaLogStatus;
  /** Attempts made (1 + retries). */
  readonly attempts: number;
  /** JSON text of the step's result (completed act), `null` otherwise. */
  readonly result: string | null;
  /** JSON text of the error (failed action), `null` otherwise. */
  readonly error: string | null;
  /** When the first attempt started (epoch ms). */
  readonly startedAt: number;
  /** When the action finished (epoch ms). */
  readonly at: number;
}

/** A log row to append: {@link SagaLogEntry} without the store-assigned `seq` and the saga id. */
export type SagaLogEntryInput = Omit<SagaLogEntry, 'seq' | 'sagaId'>;

/** Arguments of {@link SagaStore.create}. */
export interface SagaCreate {
  readonly id: string;
  readonly name: string;
  readonly definitionVersion: number;
  /** JSON text. */
  readonly context: string;
  /** The creating worker; it holds the lease until `now + leaseMs`. */
  readonly owner: string;
  readonly now: number;
  readonly leaseMs: number;
  readonly deadlineAt: number | null;
}

/** Arguments of {@link SagaStore.commit}: the new state of the saga row plus what to append, all or nothing. */
export interface SagaCommit {
  readonly id: string;
  /** Must equal the lease owner stored on the row. */
  readonly owner: string;
  /** Must equal the stored `version`; the store sets `version = expectedVersion + 1`. */
  readonly expectedVersion: number;
  readonly now: number;
  readonly status: SagaStatus;
  /** JSON text; replaces the stored context. */
  readonly context: string;
  readonly cursor: number;
  /** Replaces the stored error (`null` clears it). */
  readonly error: string | null;
  /** Log rows to append, in this order (may be empty). */
  readonly log: readonly SagaLogEntryInput[];
  /**
   * Events to stage in the store's transactional outbox in the same transaction. Only allowed when
   * `capabilities.outbox` is true; a store without an outbox throws a ConfigurationError (`CQRS_CONFIGURATION`)
   * for a non-empty list before writing anything.
   */
  readonly events?: readonly AnyEvent[];
  /**
   * `release`: clear `leaseOwner`/`leaseUntil`; a number: extend the lease to `now + lease` ms; `{ retryAt }`:
   * clear `leaseOwner` and set `leaseUntil = retryAt`, the time after which `findRecoverable` returns the saga
   * again (for a `compensation_failed` saga that should be retried).
   */
  readonly lease: number | 'release' | { readonly retryAt: number };
}

/** Arguments of {@link SagaStore.acquire}. */
export interface SagaAcquire {
  readonly id: string;
  readonly owner: string;
  readonly now: number;
  readonly leaseMs: number;
  /**
   * Take the saga only while its `version` still equals this one (the version a recovery worker listed): a saga
   * changed since is left alone. `undefined`: any version.
   */
  readonly expectedVersion?: number;
}

/** Arguments of {@link SagaStore.renew}. */
export interface SagaRenew {
  readonly id: string;
  readonly owner: string;
  readonly expectedVersion: number;
  readonly now: number;
  readonly leaseMs: number;
}

/** Arguments of {@link SagaStore.release}. */
export interface SagaRelease {
  readonly id: string;
  readonly owner: string;
  readonly expectedVersion: number;
}

/** Arguments of {@link SagaStore.findRecoverable}. */
export interface SagaRecoveryQuery {
  readonly now: number;
  /** At most this many rows (>= 1). */
  readonly limit: number;
  /** Only sagas with `updatedAt <= now - staleAfterMs`. Default 0. */
  readonly staleAfterMs?: number;
  /** Only sagas with one of these names; `undefined` means any name, an empty list matches nothing. */
  readonly names?: readonly string[];
  /** Only sagas with `attempts < maxAttempts`; `undefined` means no limit. */
  readonly maxAttempts?: number;
}

/** Arguments of {@link SagaStore.list}. */
export interface SagaListQuery {
  /** Only these statuses; `undefined` means any, an empty list matches nothing. */
  readonly statuses?: readonly SagaStatus[];
  /** Only these names; `undefined` means any, an empty list matches nothing. */
  readonly names?: readonly string[];
  /** At most this many rows (>= 1). */
  readonly limit: number;
  /**
   * Keyset pagination: only ids greater than this one. Ids compare as byte strings (JavaScript `<` on the ASCII ids):
   * use a binary collation for the id column (`COLLATE "C"` in Postgres, `utf8mb4_bin`/`VARBINARY` in MariaDB,
   * the default `BINARY` in SQLite), also for `ORDER BY id`.
   */
  readonly afterId?: string;
}

/** Arguments of {@link SagaStore.count}. */
export interface SagaCountQuery {
  /** Only these names; `undefined` means any, an empty list matches nothing. */
  readonly names?: readonly string[];
}

/** What a store supports beyond the required methods. */
export interface SagaStoreCapabilities {
  /** `commit` accepts `events` and stages them in a transactional outbox in the same transaction. */
  readonly outbox: boolean;
}

/**
 * Saga storage port. Every method is atomic on its own; none needs a caller transaction.
 *
 * Errors: a guard that does not hold (version, owner, missing row, duplicate id) throws a
 * {@link SagaConflictError} (`CQRS_CONCURRENCY`) and changes nothing; driver failures throw a `StorageError`
 * (`CQRS_STORAGE`) classified like the outbox stores do. The SQL stores also check what they write and read:
 * input they cannot store faithfully (a non-string text, a non-integer number, an unknown status or action, a
 * key over 255 characters, a lone surrogate or NUL, which `JSON.stringify` output never holds) is a
 * `ValidationError` (`CQRS_VALIDATION`), a text over their `maxTextBytes` a `PayloadTooLargeError`, both before
 * anything is written; a stored row a record cannot hold (unknown status, out-of-range number) is a
 * `SerializationError` (`CQRS_SERIALIZATION`) on reading that row, other rows stay readable.
 */
export interface SagaStore {
  readonly capabilities: SagaStoreCapabilities;
  /**
   * Inserts a saga row: `status = 'running'`, `cursor = 0`, `version = 1`, `attempts = 1`, `error = null`,
   * `leaseOwner = owner`, `leaseUntil = now + leaseMs`, `createdAt = updatedAt = now`.
   * @throws SagaConflictError when the id exists (the existing row is untouched).
   */
  create(input: SagaCreate): Promise<void>;
  /**
   * In one transaction: if the row exists, `version = expectedVersion` and `leaseOwner = owner` (the lease may
   * have expired: the version is the fence), sets `status`, `context`, `cursor`, `error`, `version + 1`,
   * `updatedAt = now` and the lease, appends the log rows in order and stages `events` in the outbox.
   * Resolves to the new version.
   * @throws SagaConflictError when the guard fails (nothing written, no log row, no event).
   */
  commit(write: SagaCommit): Promise<number>;
  /**
   * Takes the lease when it is free (no owner, whatever `leaseUntil` holds), expired (`leaseUntil < now`) or
   * already held by `owner`, and, when `expectedVersion` is given, the version still equals it: sets
   * `leaseOwner = owner`, `leaseUntil = now + leaseMs`, `version + 1`, `attempts + 1`, `updatedAt = now` and
   * resolves to the updated row. Resolves to `undefined` (changing nothing) when the row does not exist, another
   * owner holds a live lease or the version moved. Does not look at the status (the engine decides what it may
   * do).
   */
  acquire(request: SagaAcquire): Promise<SagaRecord | undefined>;
  /**
   * Extends a held lease to `now + leaseMs` without changing `version` or `updatedAt`. Resolves to `false`
   * (changing nothing) when the owner or version does not match.
   */
  renew(request: SagaRenew): Promise<boolean>;
  /**
   * Clears the lease without changing `version`, `updatedAt` or anything else. Resolves to `false` when the
   * owner or version does not match.
   */
  release(request: SagaRelease): Promise<boolean>;
  /** The saga row, or `undefined`. No lease is taken. */
  load(id: string): Promise<SagaRecord | undefined>;
  /** Every log row of a saga ordered by `seq` ascending; `[]` for an unknown id. */
  history(id: string): Promise<readonly SagaLogEntry[]>;
  /**
   * Sagas a recovery worker may take: interrupted ones (`status` in (`running`, `compensating`), lease free or
   * expired: `leaseOwner IS NULL OR leaseUntil < now`) and `compensation_failed` ones whose retry time has come
   * or whose worker's lease ran out (`leaseUntil < now`; a `null` `leaseUntil` waits for an operator); all with
   * `updatedAt <= now - staleAfterMs`, plus the `names` and `maxAttempts` filters; ordered by `updatedAt` then
   * `id` ascending; at most `limit` rows. Takes no lease.
   */
  findRecoverable(query: SagaRecoveryQuery): Promise<readonly SagaRecord[]>;
  /** Saga rows for operators (e.g. every `compensation_failed` saga), ordered by `id` ascending. */
  list(query: SagaListQuery): Promise<readonly SagaRecord[]>;
  /**
   * Optional: how many sagas are in each status (every status a key, 0 when none), for operators' counts. One
   * grouped statement; reads no context.
   */
  count?(query?: SagaCountQuery): Promise<Readonly<Record<SagaStatus, number>>>;
}
