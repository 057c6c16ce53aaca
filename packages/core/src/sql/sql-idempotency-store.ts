import type { IdempotencyRecord, IdempotencyStore } from '../unit-of-work/idempotency.ts';
import { IDEMPOTENCY_CONSUMER } from '../unit-of-work/idempotency.ts';

/** A row of the inbox table as read for an idempotency record (`fingerprint`, `result`). */
export type IdempotencyRow = Readonly<Record<string, unknown>>;

/**
 * The statements of an SQL idempotency store, run by {@link createSqlIdempotencyStore}. Each takes the record's
 * id; the `consumer` column is {@link IDEMPOTENCY_CONSUMER}.
 */
export interface SqlIdempotencyStoreOptions<TTx> {
  /** Reads the row on the store's own connection, outside any transaction. */
  readonly find: (
    id: string,
    consumer: string,
  ) => Promise<IdempotencyRow | undefined> | IdempotencyRow | undefined;
  /**
   * Inserts the claim (`message_id`, `consumer`, `processed_at`, `fingerprint`) in `tx` unless the row exists,
   * waiting for a transaction that holds it; resolves to the rows inserted, 0 or 1, or, when it read the row
   * it did not insert in the same round trip (as `read` does), to that row.
   */
  readonly insert: (
    tx: TTx,
    id: string,
    consumer: string,
    now: number,
    fingerprint: string,
  ) => Promise<number | IdempotencyRow> | number | IdempotencyRow;
  /** Reads the committed row in `tx` (with a locking read where the isolation level needs one). */
  readonly read: (
    tx: TTx,
    id: string,
    consumer: string,
  ) => Promise<IdempotencyRow | undefined> | IdempotencyRow | undefined;
  /** Sets the row's `result` in `tx`. */
  readonly complete: (tx: TTx, id: string, consumer: string, result: string) => Promise<unknown> | unknown;
  /** The adapter's classification of driver errors (see `createStorageErrorMapper`). */
  readonly toStorageError: (error: unknown, what: string) => Error;
}

function recordOf(row: IdempotencyRow | undefined): IdempotencyRecord | undefined {
  if (row === undefined) return undefined;
  const text = (v: unknown) => (typeof v === 'string' ? v : null);
  return { fingerprint: text(row.fingerprint), result: text(row.result) };
}

/** An {@link IdempotencyStore} over four SQL statements on the inbox table, with the adapter's storage errors. */
export function createSqlIdempotencyStore<TTx>(
  options: SqlIdempotencyStoreOptions<TTx>,
): IdempotencyStore<TTx> {
  const { find, insert, read, complete, toStorageError } = options;
  const c = IDEMPOTENCY_CONSUMER;
  return {
    async find(id) {
      try {
        return recordOf(await find(id, c));
      } catch (error) {
        throw toStorageError(error, 'idempotency find');
      }
    },
    async claim(tx, id, fingerprint, now) {
      try {
        for (;;) {
          const inserted = await insert(tx, id, c, now, fingerprint);
          if (inserted === 1) return undefined;
          // The conflicting row is committed now; a purge may have removed it meanwhile: then claim again.
          const found = recordOf(typeof inserted === 'number' ? await read(tx, id, c) : inserted);
          if (found !== undefined) return found;
        }
      } catch (error) {
        throw toStorageError(error, 'idempotency claim');
      }
    },
    async complete(tx, id, result) {
      try {
        await complete(tx, id, c, result);
      } catch (error) {
        throw toStorageError(error, 'idempotency complete');
      }
    },
  };
}
