import type { InboxStore } from './inbox-store.ts';
import { processOnce } from './inbox-store.ts';

/**
 * Idempotent-consumer guard over an inbox table: runs `work` inside one database transaction together with the
 * processed mark, and skips it when the mark already exists. The SQL packages provide one
 * (e.g. `createPostgresInboxGuard`); `createInMemoryInboxGuard` is the in-process one.
 */
export interface InboxGuard<TTx = unknown> {
  /**
   * `true` when `work` ran and committed with the mark; `false` for a duplicate. A message is identified by
   * `source` and `messageId` (CloudEvents identity: two producers may use the same id); `source` defaults to `''`.
   */
  once(
    messageId: string,
    consumer: string,
    work: (tx: TTx) => Promise<void>,
    source?: string,
  ): Promise<boolean>;
}

/** What {@link createInboxGuard} needs from a storage adapter. */
export interface InboxGuardOptions<TTx> {
  /** The inbox store whose `markProcessed` runs in each transaction. */
  readonly store: InboxStore<TTx>;
  /** Runs `fn` in one new transaction: commits when it resolves, rolls back when it throws. */
  readonly transaction: <T>(fn: (tx: TTx) => Promise<T>) => Promise<T>;
  /**
   * Classifies a failure of the transaction itself (connect, BEGIN, COMMIT) as a typed error, usually a
   * `StorageError`. Errors thrown by `work` never go through it: they reach the caller unchanged.
   */
  readonly toStorageError: (error: unknown, what: string) => Error;
  /**
   * Run one message at a time, in call order: for a connection that holds one transaction at a time (SQLite).
   * @default false
   */
  readonly serial?: boolean;
}

/**
 * Builds an {@link InboxGuard} from an inbox store and a transaction runner: the body every storage adapter's
 * guard shares. Each `once` opens a transaction, writes the mark with `processOnce`, runs `work` with the
 * transaction and commits; a duplicate commits nothing of `work`, a throwing `work` rolls the mark back.
 */
export function createInboxGuard<TTx>(options: InboxGuardOptions<TTx>): InboxGuard<TTx> {
  const { store, transaction, toStorageError } = options;
  async function once(
    id: string,
    consumer: string,
    work: (tx: TTx) => Promise<void>,
    source?: string,
  ): Promise<boolean> {
    let thrown: { error: unknown } | undefined;
    try {
      return await transaction(async (tx) => {
        try {
          return (await processOnce(store, tx, id, consumer, work, source)).status === 'processed';
        } catch (error) {
          thrown = { error };
          throw error;
        }
      });
    } catch (error) {
      if (thrown !== undefined && thrown.error === error) throw error;
      throw toStorageError(error, 'inbox transaction');
    }
  }
  if (options.serial !== true) return { once };
  let tail: Promise<unknown> = Promise.resolve();
  return {
    once(id, consumer, work, source) {
      const run = tail.then(() => once(id, consumer, work, source));
      tail = run.catch(() => undefined);
      return run;
    },
  };
}
