import { StorageError } from '../errors/storage-error.ts';
import { runInTransaction } from '../shared/transaction.ts';
import type { InboxGuard } from './inbox-guard.ts';
import { createInboxGuard } from './inbox-guard.ts';
import type { InboxStore } from './inbox-store.ts';

/** A unit of work of the in-memory inbox: its marks become visible on `commit()`, and vanish on `rollback()`. */
export interface InMemoryInboxTransaction {
  /** Runs `fn` after a successful commit (the in-memory stand-in for effects written in the transaction). */
  onCommit(fn: () => void): void;
  commit(): void;
  rollback(): void;
  /** `false` once committed or rolled back. */
  readonly open: boolean;
}

/** The in-memory inbox store with its transaction factory. */
export interface InMemoryInboxStore extends InboxStore<InMemoryInboxTransaction> {
  /** Starts a transaction; pass it to `markProcessed`, then `commit()` or `rollback()`. */
  begin(): InMemoryInboxTransaction;
  /** Runs `fn` in a new transaction: commits when it resolves, rolls back when it throws. */
  transaction<T>(fn: (tx: InMemoryInboxTransaction) => Promise<T> | T): Promise<T>;
  /** Whether a committed mark exists. */
  has(messageId: string, consumer: string, source?: string): boolean;
  /** Committed marks. */
  readonly size: number;
}

/**
 * An {@link InboxStore} in process memory, for tests and single-process apps: marks are staged in a
 * transaction and committed with it; a second transaction marking the same message waits until the first one
 * ends, then sees a duplicate (if it committed) or takes the mark (if it rolled back).
 */
export function createInMemoryInboxStore(): InMemoryInboxStore {
  const committed = new Map<string, number>();
  // Marks staged by open transactions, with the promise that settles when their transaction ends.
  const staged = new Map<string, { readonly tx: object; readonly ended: Promise<void> }>();

  const store: InMemoryInboxStore = {
    begin() {
      const keys: [string, number][] = [];
      const hooks: (() => void)[] = [];
      let open = true;
      let end!: () => void;
      const ended = new Promise<void>((resolve) => {
        end = resolve;
      });
      const finish = (commit: boolean) => {
        if (!open) throw new StorageError('closed-transaction', 'inbox transaction is closed');
        open = false;
        for (const [key, at] of keys) {
          staged.delete(key);
          if (commit) committed.set(key, at);
        }
        end();
        if (commit) for (const fn of hooks) fn();
      };
      const tx: InMemoryInboxTransaction & { keys: typeof keys; ended: Promise<void> } = {
        keys,
        ended,
        onCommit(fn) {
          if (!open) throw new StorageError('closed-transaction', 'inbox transaction is closed');
          hooks.push(fn);
        },
        commit: () => finish(true),
        rollback: () => finish(false),
        get open() {
          return open;
        },
      };
      return tx;
    },
    transaction: (fn) => runInTransaction(store.begin(), fn, (tx) => tx.open),
    async markProcessed(tx, messageId, consumer, now, source = '') {
      const t = tx as InMemoryInboxTransaction & { keys?: [string, number][]; ended?: Promise<void> };
      if (t === null || typeof t !== 'object' || t.keys === undefined || t.ended === undefined) {
        throw new StorageError('closed-transaction', 'not a transaction of this in-memory inbox');
      }
      const key = `${consumer}\u0000${source}\u0000${messageId}`;
      for (;;) {
        if (!t.open) throw new StorageError('closed-transaction', 'inbox transaction is closed');
        if (committed.has(key)) return false;
        const other = staged.get(key);
        if (other === undefined) break;
        if (other.tx === t) return false;
        await other.ended;
      }
      staged.set(key, { tx: t, ended: t.ended });
      t.keys.push([key, now]);
      return true;
    },
    async purge(processedBefore) {
      let n = 0;
      for (const [key, at] of committed) {
        if (at < processedBefore) {
          committed.delete(key);
          n++;
        }
      }
      return n;
    },
    has(messageId, consumer, source = '') {
      return committed.has(`${consumer}\u0000${source}\u0000${messageId}`);
    },
    get size() {
      return committed.size;
    },
  };
  return store;
}

/** Options of {@link createInMemoryInboxGuard}. */
export interface InMemoryInboxGuardOptions {
  /** The store holding the marks. @default a new `createInMemoryInboxStore()` */
  readonly store?: InMemoryInboxStore;
}

/**
 * An {@link InboxGuard} over an in-memory inbox: each message's `work` runs with a transaction of the store
 * (register effects with `tx.onCommit`), so a redelivered message is skipped.
 */
export function createInMemoryInboxGuard(
  options: InMemoryInboxGuardOptions = {},
): InboxGuard<InMemoryInboxTransaction> {
  const store = options.store ?? createInMemoryInboxStore();
  return createInboxGuard({
    store,
    transaction: (fn) => store.transaction(fn),
    toStorageError: (error) => (error instanceof Error ? error : new Error(String(error))),
  });
}
