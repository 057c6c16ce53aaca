import { StorageError } from '../errors/storage-error.ts';
import type { AnyEvent } from '../messages/message.ts';
import { runInTransaction } from '../shared/transaction.ts';
import { createOutboxEncoder, type OutboxEncoderOptions } from './outbox-codec.ts';
import { OutboxError } from './outbox-errors.ts';
import type { OutboxRecord } from './outbox-record.ts';
import type { OutboxStore } from './outbox-store.ts';

/** A unit of work of the in-memory store: appended events become visible on `commit()`. */
export interface InMemoryOutboxTransaction {
  append(records: readonly OutboxRecord[]): void;
  commit(): void;
  rollback(): void;
}

type MutableRecord = { -readonly [K in keyof OutboxRecord]: OutboxRecord[K] };

/** The in-memory outbox store with its transaction factory. */
export interface InMemoryOutboxStore extends OutboxStore<InMemoryOutboxTransaction> {
  /** Starts a transaction; pass it to `append`, then `commit()` or `rollback()`. */
  begin(): InMemoryOutboxTransaction;
  /** Runs `fn` in a new transaction: commits when it resolves, rolls back when it throws. */
  transaction<T>(fn: (tx: InMemoryOutboxTransaction) => Promise<T> | T): Promise<T>;
  /** Snapshot of all rows, by `seq`. */
  records(): readonly OutboxRecord[];
}

/**
 * An {@link OutboxStore} in process memory, for tests and single-process apps that accept losing unpublished
 * events on a crash. Published rows stay until `purge`.
 */
export function createInMemoryOutboxStore(
  options: OutboxEncoderOptions & { now?: () => number } = {},
): InMemoryOutboxStore {
  const encoder = createOutboxEncoder(options);
  const now = options.now ?? Date.now;
  const rows = new Map<string, MutableRecord>();
  let seq = 0;

  // Pending rows in seq order, so a claim scans only the backlog (published rows stay in `rows` until purge).
  let pending = new Map<string, MutableRecord>();
  const settle = (r: MutableRecord) => {
    if (r.status !== 'pending') pending.delete(r.id);
  };

  const store: InMemoryOutboxStore = {
    begin() {
      let staged: OutboxRecord[] | undefined = [];
      return {
        append(records) {
          if (staged === undefined) throw new StorageError('closed-transaction', 'transaction is closed');
          staged.push(...records);
        },
        commit() {
          if (staged === undefined) throw new OutboxError('transaction is closed');
          for (const r of staged) {
            if (rows.has(r.id)) throw new OutboxError(`duplicate outbox id ${r.id}`);
          }
          for (const r of staged) {
            const row = { ...r, seq: ++seq };
            rows.set(r.id, row);
            pending.set(r.id, row);
          }
          staged = undefined;
        },
        rollback() {
          staged = undefined;
        },
      };
    },
    transaction: (fn) => runInTransaction(store.begin(), fn),
    async append(tx, events: readonly AnyEvent[]) {
      const inputs = encoder.encode(events, now());
      tx.append(
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
        })),
      );
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
        out.push({ ...r });
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
        .map((r) => ({ ...r }));
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
      for (const id of ids) if (rows.get(id)?.status === 'dead' && rows.delete(id)) n++;
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
    async purge({ publishedBefore, deadBefore }) {
      let n = 0;
      for (const [id, r] of rows) {
        if (
          (r.status === 'published' && (r.publishedAt ?? 0) < publishedBefore) ||
          (deadBefore !== undefined && r.status === 'dead' && r.createdAt < deadBefore)
        ) {
          rows.delete(id);
          n++;
        }
      }
      return n;
    },
    records() {
      return [...rows.values()].map((r) => ({ ...r }));
    },
  };
  return store;
}
