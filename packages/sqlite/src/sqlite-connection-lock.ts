/** The tail of the queue of each connection. */
const tails = new WeakMap<object, Promise<unknown>>();

/**
 * Runs `work` when every piece of work queued before it on `database` has ended: a SQLite connection holds one
 * transaction at a time, and a transaction that stays open across `await`s must not interleave with another.
 * @internal
 */
export function serialize<TResult>(database: object, work: () => Promise<TResult>): Promise<TResult> {
  const run = (tails.get(database) ?? Promise.resolve()).then(work);
  const tail = run.then(
    () => undefined,
    () => undefined,
  );
  tails.set(database, tail);
  return run;
}
