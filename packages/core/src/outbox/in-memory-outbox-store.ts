import { ConfigurationError } from '../errors/cqrs-error.ts';
import { StorageError } from '../errors/storage-error.ts';
import type { AnyEvent } from '../messages/message.ts';
import { runInTransaction } from '../shared/transaction.ts';
import { createOutboxEncoder, type OutboxEncoderOptions } from './outbox-codec.ts';
import { OutboxError } from './outbox-errors.ts';
import type { OutboxRecord, OutboxRecordInput } from './outbox-record.ts';
import type { OutboxStore } from './outbox-store.ts';

/** A unit of work of the in-memory store: appended events become visible on `commit()`. */
export interface InMemoryOutboxTransaction {
  append(records: readonly OutboxRecord[]): void;
  commit(): void;
  rollback(): void;
}

type MutableRecord = { -readonly [K in keyof OutboxRecord]: OutboxRecord[K] } & {
  /** Set for events appended to a stream (see the in-memory event store). */
  streamId?: string | null;
  streamVersion?: number | null;
};

/** A row staged by a stream append. @internal */
export type StagedRecord = OutboxRecord & { readonly streamId?: string; readonly streamVersion?: number };

/** What the in-memory event store reaches inside an in-memory outbox store. @internal */
export interface InMemoryOutboxInternals {
  readonly archive: boolean;
  encode(events: readonly AnyEvent[]): OutboxRecord[];
  /** Committed rows, live and archived, in seq order (live rows are the store's own objects: do not change). */
  logRows(): readonly MutableRecord[];
  /** The live (not archived) row of an id. */
  row(id: string): MutableRecord | undefined;
  /** Rows `tx` staged so far (`undefined` once it ended). */
  staged(tx: InMemoryOutboxTransaction): readonly StagedRecord[] | undefined;
}

const internals = new WeakMap<object, InMemoryOutboxInternals>();

interface TxState {
  staged: StagedRecord[] | undefined;
  readonly commit: (() => void)[];
  readonly end: (() => void)[];
}

const transactions = new WeakMap<object, TxState>();

/**
 * The transaction a handler gets from an in-memory unit of work (`InMemoryTransaction`), as the in-memory stores
 * accept it besides their own transactions: it stands for the outbox transaction the unit opened.
 */
export interface InMemoryTransactionHandle {
  onCommit(apply: () => void): void;
}

/** What the in-memory event store and state repository write with. */
export type InMemoryStoreTransaction = InMemoryOutboxTransaction | InMemoryTransactionHandle;

const handles = new WeakMap<object, InMemoryOutboxTransaction>();

/** Makes `handle` stand for `tx` in the in-memory stores (the in-memory unit of work links its transactions). @internal */
export function linkInMemoryTransaction(handle: object, tx: InMemoryOutboxTransaction): void {
  handles.set(handle, tx);
}

/** The outbox transaction `tx` is or stands for; `undefined` for anything else. @internal */
export function inMemoryTransactionOf(tx: unknown): InMemoryOutboxTransaction | undefined {
  if (typeof tx !== 'object' || tx === null) return undefined;
  if (transactions.has(tx)) return tx as InMemoryOutboxTransaction;
  return handles.get(tx);
}

/**
 * Registers `commit` to run when `tx` (a transaction of any in-memory outbox store) commits, after its rows are
 * stored, and `end` when it commits or rolls back. `false` when `tx` is not an open in-memory transaction.
 * @internal
 */
export function onInMemoryTransactionEnd(
  tx: unknown,
  hooks: { readonly commit?: () => void; readonly end?: () => void },
): boolean {
  const state = typeof tx === 'object' && tx !== null ? transactions.get(tx) : undefined;
  if (state?.staged === undefined) return false;
  if (hooks.commit) state.commit.push(hooks.commit);
  if (hooks.end) state.end.push(hooks.end);
  return true;
}

/** The internals of an in-memory outbox store, `undefined` for anything else. @internal */
export function inMemoryOutboxInternals(store: unknown): InMemoryOutboxInternals | undefined {
  return typeof store === 'object' && store !== null ? internals.get(store) : undefined;
}

/** Options of {@link createInMemoryOutboxStore}. */
export interface InMemoryOutboxStoreOptions extends OutboxEncoderOptions {
  /** Clock, epoch ms. @default Date.now */
  readonly now?: () => number;
  /**
   * `true`: `purge` and `deleteDeadLetters` move rows to an archive that the event log keeps reading, instead of
   * deleting them. Events appended to a stream are always archived, never deleted. @default false
   */
  readonly archive?: boolean;
}

/** The in-memory outbox store with its transaction factory. */
export interface InMemoryOutboxStore extends OutboxStore<InMemoryOutboxTransaction> {
  /** Starts a transaction; pass it to `append`, then `commit()` or `rollback()`. */
  begin(): InMemoryOutboxTransaction;
  /** Runs `fn` in a new transaction: commits when it resolves, rolls back when it throws. */
  transaction<T>(fn: (tx: InMemoryOutboxTransaction) => Promise<T> | T): Promise<T>;
  /** Snapshot of all rows, by `seq`. */
  records(): readonly OutboxRecord[];
}

const toRows = (inputs: readonly OutboxRecordInput[]): OutboxRecord[] =>
  inputs.map((r) => ({
    ...r,
    seq: 0,
    status: 'pending',
    attempts: 0,
    nextAttemptAt: r.createdAt,
    lastError: null,
    publishedAt: null,
    claimedBy: null,
    claimedUntil: null,
  }));

/** A copy of a row without the stream fields. */
function publicRecord(r: MutableRecord): OutboxRecord {
  const { streamId: _s, streamVersion: _v, ...record } = r;
  return record;
}

/**
 * An {@link OutboxStore} in process memory, for tests and single-process apps that accept losing unpublished
 * events on a crash. Published rows stay until `purge`, which deletes them or, with `archive: true`, moves them
 * to the archive the event log reads (see `createInMemoryEventStore`).
 */
export function createInMemoryOutboxStore(options: InMemoryOutboxStoreOptions = {}): InMemoryOutboxStore {
  const encoder = createOutboxEncoder(options);
  const now = options.now ?? Date.now;
  const archiveAll = options.archive ?? false;
  if (typeof archiveAll !== 'boolean')
    throw new ConfigurationError('in-memory outbox: archive must be a boolean');
  const rows = new Map<string, MutableRecord>();
  /** Published rows moved out of `rows` by `purge`, in seq order. */
  const archived: MutableRecord[] = [];
  let seq = 0;
  /** Rows leaving the table are archived, not deleted, in archive mode and when they belong to a stream. */
  const keeps = (r: MutableRecord) => archiveAll || (r.streamId ?? null) !== null;
  const toArchive = (moved: MutableRecord[]) => {
    if (moved.length === 0) return;
    archived.push(...moved);
    archived.sort((a, b) => a.seq - b.seq);
  };

  // Pending rows in seq order, so a claim scans only the backlog (published rows stay in `rows` until purge).
  let pending = new Map<string, MutableRecord>();
  const settle = (r: MutableRecord) => {
    if (r.status !== 'pending') pending.delete(r.id);
  };

  const store: InMemoryOutboxStore = {
    begin() {
      const state: TxState = { staged: [], commit: [], end: [] };
      const end = () => {
        state.staged = undefined;
        for (const fn of state.end) fn();
      };
      const tx: InMemoryOutboxTransaction = {
        append(records) {
          if (state.staged === undefined)
            throw new StorageError('closed-transaction', 'transaction is closed');
          state.staged.push(...records);
        },
        commit() {
          const staged = state.staged;
          if (staged === undefined) throw new OutboxError('transaction is closed');
          for (const r of staged) {
            if (rows.has(r.id)) throw new OutboxError(`duplicate outbox id ${r.id}`);
          }
          for (const r of staged) {
            const row: MutableRecord = { ...r, seq: ++seq };
            rows.set(r.id, row);
            pending.set(r.id, row);
          }
          state.staged = undefined;
          try {
            for (const fn of state.commit) fn();
          } finally {
            end();
          }
        },
        rollback() {
          if (state.staged !== undefined) end();
        },
      };
      transactions.set(tx, state);
      return tx;
    },
    transaction: (fn) => runInTransaction(store.begin(), fn),
    async append(tx, events: readonly AnyEvent[]) {
      tx.append(toRows(encoder.encode(events, now())));
    },
    async claimBatch({ relayId, limit, leaseMs, now: t }) {
      // One pass in seq order: a pending row that is backing off or leased blocks the later rows of its key.
      const out: OutboxRecord[] = [];
      let blocked: Set<string> | undefined;
      for (const r of pending.values()) {
        if (out.length >= limit) break;
        const due = r.nextAttemptAt <= t && (r.claimedUntil === null || r.claimedUntil < t);
        if (r.key !== null && (!due || blocked?.has(r.key))) {
          blocked ??= new Set();
          blocked.add(r.key);
          continue;
        }
        if (!due) continue;
        r.claimedBy = relayId;
        r.claimedUntil = t + leaseMs;
        out.push(publicRecord(r));
      }
      return out;
    },
    async markPublished(ids, t) {
      for (const id of ids) {
        const r = rows.get(id);
        if (r && r.status === 'pending') {
          r.status = 'published';
          r.publishedAt = t;
          r.claimedBy = null;
          r.claimedUntil = null;
          settle(r);
        }
      }
    },
    async markFailed(failures) {
      for (const f of failures) {
        const r = rows.get(f.id);
        if (r?.status !== 'pending') continue;
        r.attempts++;
        r.lastError = f.error;
        r.nextAttemptAt = f.nextAttemptAt;
        r.status = f.dead ? 'dead' : 'pending';
        r.claimedBy = null;
        r.claimedUntil = null;
        settle(r);
      }
    },
    async release(ids) {
      for (const id of ids) {
        const r = rows.get(id);
        if (r && r.status === 'pending') {
          r.claimedBy = null;
          r.claimedUntil = null;
        }
      }
    },
    async listDeadLetters(opts = {}) {
      const after = opts.afterSeq ?? 0;
      return [...rows.values()]
        .filter((r) => r.status === 'dead' && r.seq > after)
        .slice(0, opts.limit ?? 100)
        .map(publicRecord);
    },
    async replayDeadLetters(ids, t) {
      let n = 0;
      for (const id of ids) {
        const r = rows.get(id);
        if (r && r.status === 'dead') {
          Object.assign(r, { status: 'pending', attempts: 0, nextAttemptAt: t, lastError: null });
          n++;
        }
      }
      if (n > 0) {
        // back in seq order among the pending rows
        pending = new Map([...rows.values()].filter((r) => r.status === 'pending').map((r) => [r.id, r]));
      }
      return n;
    },
    async deleteDeadLetters(ids) {
      let n = 0;
      const moved: MutableRecord[] = [];
      for (const id of ids) {
        const r = rows.get(id);
        if (r?.status === 'dead' && rows.delete(id)) {
          if (keeps(r)) moved.push(r);
          n++;
        }
      }
      toArchive(moved);
      return n;
    },
    async stats(t) {
      let backlog = 0;
      let dead = 0;
      let oldest = t;
      for (const r of rows.values()) {
        if (r.status === 'pending') {
          backlog++;
          if (r.createdAt < oldest) oldest = r.createdAt;
        } else if (r.status === 'dead') dead++;
      }
      return { backlog, dead, oldestPendingAgeMs: backlog === 0 ? 0 : Math.max(0, t - oldest) };
    },
    async publishedCounts({ since, bucketMs, buckets }) {
      const counts = new Array<number>(buckets).fill(0);
      for (const r of rows.values()) {
        if (r.status !== 'published' || r.publishedAt === null || r.publishedAt < since) continue;
        const i = Math.floor((r.publishedAt - since) / bucketMs);
        if (i < buckets) counts[i]!++;
      }
      return counts;
    },
    async purge({ publishedBefore, deadBefore }) {
      let n = 0;
      const moved: MutableRecord[] = [];
      for (const [id, r] of rows) {
        if (
          (r.status === 'published' && (r.publishedAt ?? 0) < publishedBefore) ||
          (deadBefore !== undefined && r.status === 'dead' && r.createdAt < deadBefore)
        ) {
          rows.delete(id);
          if (keeps(r)) moved.push(r);
          n++;
        }
      }
      toArchive(moved);
      return n;
    },
    records() {
      return [...rows.values()].map(publicRecord);
    },
  };
  internals.set(store, {
    archive: archiveAll,
    encode: (events) => toRows(encoder.encode(events, now())),
    logRows() {
      const live = [...rows.values()];
      if (archived.length === 0) return live;
      // Both lists are in seq order: merge them.
      const out: MutableRecord[] = [];
      let i = 0;
      let j = 0;
      while (i < archived.length || j < live.length) {
        if (j >= live.length || (i < archived.length && archived[i]!.seq < live[j]!.seq))
          out.push(archived[i++]!);
        else out.push(live[j++]!);
      }
      return out;
    },
    row: (id) => rows.get(id),
    staged: (tx) => transactions.get(tx)?.staged,
  });
  return store;
}
