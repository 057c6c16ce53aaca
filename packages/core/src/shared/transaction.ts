/** A unit of work of an in-memory store. */
export interface InMemoryUnitOfWork {
  commit(): void;
  rollback(): void;
}

/** Runs `fn` with `tx`: commits when it resolves, rolls back when it throws (unless `tx` already ended). */
export async function runInTransaction<TTx extends InMemoryUnitOfWork, T>(
  tx: TTx,
  fn: (tx: TTx) => Promise<T> | T,
  isOpen: (tx: TTx) => boolean = () => true,
): Promise<T> {
  try {
    const result = await fn(tx);
    tx.commit();
    return result;
  } catch (error) {
    if (isOpen(tx)) tx.rollback();
    throw error;
  }
}
