import { ConfigurationError } from '@cqrs-ts/core';
import type { SagaLogEntry, SagaRecord, SagaStatus, SagaStore } from '@cqrs-ts/core/spi';
import { SagaNotFoundError } from './saga-errors.ts';

/**
 * A logged act or compensation of a watched saga: its log row (`seq` is the row's sequence: resume after it with
 * `after`), with `result` and `error` parsed from their JSON text (`null` when absent).
 */
export interface SagaStepProgress extends Omit<SagaLogEntry, 'result' | 'error' | 'startedAt'> {
  readonly kind: 'step';
  readonly result: unknown;
  readonly error: unknown;
}

/** The saga row of a watched saga, each time its status, cursor or version changed. */
export interface SagaStateProgress {
  readonly kind: 'state';
  /** Sequence of the last log row before this state (`0` for none): resuming after it repeats this state. */
  readonly seq: number;
  readonly sagaId: string;
  readonly name: string;
  readonly status: SagaStatus;
  /** Forward steps completed. */
  readonly cursor: number;
  readonly version: number;
  readonly updatedAt: number;
}

/** What {@link SagaRunner.watch} yields. */
export type SagaProgress = SagaStepProgress | SagaStateProgress;

/** Options of {@link SagaRunner.watch}. */
export interface SagaWatchOptions {
  /** Only log rows after this sequence (a resuming client's last seen `seq`). @default 0 */
  readonly after?: number;
  /** Ends the feed (the iterator returns). */
  readonly signal?: AbortSignal;
  /**
   * Re-reads the store this often, in ms, for changes other processes commit. Changes this runner commits wake
   * the feed at once without it. @default none
   */
  readonly recheckMs?: number;
}

/** Statuses after which a saga changes no more by itself. */
const FINAL: ReadonlySet<SagaStatus> = new Set(['completed', 'compensated', 'failed']);

/** Wakes watchers of a saga when this runner commits to it. */
export class SagaChanges {
  readonly #waiters = new Map<string, Set<() => void>>();

  notify(sagaId: string): void {
    const set = this.#waiters.get(sagaId);
    if (set === undefined) return;
    this.#waiters.delete(sagaId);
    for (const wake of set) wake();
  }

  /** A promise resolved by the next change of the saga; `cancel` drops the waiter. */
  next(sagaId: string): { readonly changed: Promise<void>; cancel(): void } {
    let wake!: () => void;
    const changed = new Promise<void>((resolve) => {
      wake = resolve;
    });
    let set = this.#waiters.get(sagaId);
    if (set === undefined) {
      set = new Set();
      this.#waiters.set(sagaId, set);
    }
    set.add(wake);
    return {
      changed,
      cancel: () => {
        const s = this.#waiters.get(sagaId);
        s?.delete(wake);
        if (s?.size === 0) this.#waiters.delete(sagaId);
      },
    };
  }

  /** The store with `create` and `commit` waking the saga's watchers once they succeed. */
  wrap(store: SagaStore): SagaStore {
    const wrapped: SagaStore = {
      capabilities: store.capabilities,
      create: async (input) => {
        await store.create(input);
        this.notify(input.id);
      },
      commit: async (write) => {
        const version = await store.commit(write);
        this.notify(write.id);
        return version;
      },
      acquire: (request) => store.acquire(request),
      renew: (request) => store.renew(request),
      release: (request) => store.release(request),
      load: (id) => store.load(id),
      history: (id) => store.history(id),
      findRecoverable: (query) => store.findRecoverable(query),
      list: (query) => store.list(query),
    };
    if (store.count !== undefined) {
      const count = store.count.bind(store);
      return { ...wrapped, count };
    }
    return wrapped;
  }
}

function parsed(text: string | null): unknown {
  if (text === null) return null;
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

function stepProgress(entry: SagaLogEntry): SagaStepProgress {
  return {
    kind: 'step',
    seq: entry.seq,
    sagaId: entry.sagaId,
    stepId: entry.stepId,
    slot: entry.slot,
    action: entry.action,
    status: entry.status,
    attempts: entry.attempts,
    result: parsed(entry.result),
    error: parsed(entry.error),
    at: entry.at,
  };
}

function stateProgress(record: SagaRecord, seq: number): SagaStateProgress {
  return {
    kind: 'state',
    seq,
    sagaId: record.id,
    name: record.name,
    status: record.status,
    cursor: record.cursor,
    version: record.version,
    updatedAt: record.updatedAt,
  };
}

/** The progress feed of one saga (see {@link SagaRunner.watch}). */
export async function* watchSaga(
  store: SagaStore,
  changes: SagaChanges,
  sagaId: string,
  options: SagaWatchOptions = {},
): AsyncGenerator<SagaProgress, void, undefined> {
  const after = options.after ?? 0;
  if (!Number.isSafeInteger(after) || after < 0)
    throw new ConfigurationError('watch: after must be a non-negative integer');
  const { signal, recheckMs } = options;
  if (recheckMs !== undefined && !(Number.isFinite(recheckMs) && recheckMs > 0))
    throw new ConfigurationError('watch: recheckMs must be a positive number');
  let seq = after;
  let lastVersion = -1;
  while (signal?.aborted !== true) {
    // arm before reading, so a commit between the read and the wait is not missed
    const next = changes.next(sagaId);
    let timer: NodeJS.Timeout | undefined;
    let onAbort: (() => void) | undefined;
    try {
      const record = await store.load(sagaId);
      if (record === undefined) throw new SagaNotFoundError(sagaId);
      if (record.version !== lastVersion) {
        for (const entry of await store.history(sagaId)) {
          if (entry.seq <= seq) continue;
          seq = entry.seq;
          yield stepProgress(entry);
        }
        // a commit between the two reads added rows of a newer version: read both again
        const again = await store.load(sagaId);
        if (again !== undefined && again.version !== record.version) continue;
        lastVersion = record.version;
        yield stateProgress(record, seq);
        if (FINAL.has(record.status)) return;
      }
      await new Promise<void>((resolve) => {
        next.changed.then(resolve, resolve);
        if (recheckMs !== undefined) timer = setTimeout(resolve, recheckMs);
        if (signal !== undefined) {
          onAbort = resolve;
          signal.addEventListener('abort', onAbort, { once: true });
          if (signal.aborted) resolve();
        }
      });
    } finally {
      next.cancel();
      if (timer !== undefined) clearTimeout(timer);
      if (onAbort !== undefined) signal?.removeEventListener('abort', onAbort);
    }
  }
}
