import type { InboxStore } from '../inbox/inbox-store.ts';

/** The statements of an SQL inbox store, run by {@link createSqlInboxStore}. */
export interface SqlInboxStoreOptions<TTx> {
  /**
   * Inserts the (source, message id, consumer) mark in `tx` unless it exists (`ON CONFLICT DO NOTHING`,
   * `INSERT IGNORE`); resolves to the rows inserted, 0 or 1. `source` is `''` for messages without one.
   */
  readonly insert: (
    tx: TTx,
    messageId: string,
    consumer: string,
    now: number,
    source: string,
  ) => Promise<number> | number;
  /** Deletes the marks processed before `processedBefore` on the store's own connection; resolves to the count. */
  readonly purge: (processedBefore: number) => Promise<number> | number;
  /** The adapter's classification of driver errors (see `createStorageErrorMapper`). */
  readonly toStorageError: (error: unknown, what: string) => Error;
}

/** An {@link InboxStore} over two SQL statements, with the adapter's storage errors. */
export function createSqlInboxStore<TTx>(options: SqlInboxStoreOptions<TTx>): InboxStore<TTx> {
  const { insert, purge, toStorageError } = options;
  return {
    async markProcessed(tx, messageId, consumer, now, source = '') {
      try {
        return (await insert(tx, messageId, consumer, now, source)) === 1;
      } catch (error) {
        throw toStorageError(error, 'inbox markProcessed');
      }
    },
    async purge(processedBefore) {
      try {
        return await purge(processedBefore);
      } catch (error) {
        throw toStorageError(error, 'inbox purge');
      }
    },
  };
}
