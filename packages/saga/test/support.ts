import type { SagaStore } from '@cqrs-ts/core/spi';

/** Thrown by {@link crashingStore} to simulate a process dying at a storage write. */
export class Crash extends Error {
  constructor(where: string) {
    super(`simulated crash at ${where}`);
    this.name = 'Crash';
  }
}

/**
 * Wraps a store and "crashes" at the n-th write (create or commit, counted from 1): `before` throws without
 * writing, `after` writes and then throws (the process died before it learned of the commit).
 */
export function crashingStore(inner: SagaStore, at: { write: number; when: 'before' | 'after' }): SagaStore {
  let writes = 0;
  const hit = () => ++writes === at.write;
  return {
    ...bind(inner),
    async create(input) {
      if (hit()) {
        if (at.when === 'before') throw new Crash(`write ${writes} (before create)`);
        await inner.create(input);
        throw new Crash(`write ${writes} (after create)`);
      }
      return inner.create(input);
    },
    async commit(write) {
      if (hit()) {
        if (at.when === 'before') throw new Crash(`write ${writes} (before commit)`);
        await inner.commit(write);
        throw new Crash(`write ${writes} (after commit)`);
      }
      return inner.commit(write);
    },
  };
}

/** Counts calls per method of a store. */
export function countingStore(inner: SagaStore): SagaStore & { calls: Record<string, number> } {
  const calls: Record<string, number> = {};
  const out = { capabilities: inner.capabilities, calls } as SagaStore & { calls: Record<string, number> };
  for (const [name, fn] of Object.entries(bind(inner))) {
    if (typeof fn !== 'function') continue;
    (out as unknown as Record<string, unknown>)[name] = (...args: unknown[]) => {
      calls[name] = (calls[name] ?? 0) + 1;
      return (fn as (...a: unknown[]) => unknown)(...args);
    };
  }
  return out;
}

function bind(store: SagaStore): SagaStore {
  return {
    capabilities: store.capabilities,
    create: (i) => store.create(i),
    commit: (w) => store.commit(w),
    acquire: (r) => store.acquire(r),
    renew: (r) => store.renew(r),
    release: (r) => store.release(r),
    load: (id) => store.load(id),
    history: (id) => store.history(id),
    findRecoverable: (q) => store.findRecoverable(q),
    list: (q) => store.list(q),
  };
}

export const tick = () => new Promise((r) => setImmediate(r));

/** A store that behaves like `inner` except for the methods in `over`. */
export function withStore(inner: SagaStore, over: Partial<Omit<SagaStore, 'capabilities'>>): SagaStore {
  return { ...bind(inner), ...over };
}

/** A promise and the function that resolves it (a gate a test opens, or a signal that a step got inside). */
export function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

/** Work that takes `ms` (a slow downstream call), ending early with the signal's reason when it aborts. */
export function work(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) {
      reject(signal.reason);
      return;
    }
    const timer = setTimeout(resolve, ms);
    signal.addEventListener(
      'abort',
      () => {
        clearTimeout(timer);
        reject(signal.reason);
      },
      { once: true },
    );
  });
}

/** Polls `condition` until it holds (every 5 ms), or fails after `timeoutMs`. */
export async function waitFor(
  condition: () => boolean | Promise<boolean>,
  timeoutMs: number,
  what: string,
): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}
