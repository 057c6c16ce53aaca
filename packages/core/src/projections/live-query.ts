import { ConfigurationError } from '../errors/cqrs-error.ts';
import { compareLogPositions } from '../event-log/event-log.ts';
import type { AnyEvent } from '../messages/message.ts';
import type { ProjectionChange, ProjectionRunner } from './projection-runner.ts';
import type { ProjectionStore } from './projection-store.ts';

/** One answer of a live query: the value, and the projection position it reflects (an SSE event id). */
export interface LiveItem<TValue> {
  readonly position: string;
  readonly value: TValue;
}

/** Options of {@link liveQuery}. */
export interface LiveQueryOptions<TValue> {
  /** The runner that runs `projection` in this process (it must hold the lease). */
  readonly runner: Pick<ProjectionRunner, 'subscribe' | 'readAt'>;
  readonly projection: string;
  /** Reads the answer from the read model. */
  query(): Promise<TValue> | TValue;
  /** Whether an applied event changes the answer. @default every event of the projection */
  readonly relevant?: (event: AnyEvent) => boolean;
  /** Resume after this position (e.g. SSE `Last-Event-ID`): nothing at or before it is sent again. */
  readonly after?: string;
  readonly signal?: AbortSignal;
}

/**
 * A query that stays open: subscribes to the projection's change feed first, then answers at a known position
 * (no batch commits while it reads), then answers again after each batch with a relevant event, in position
 * order. A change that commits while the client subscribes is in the first answer or in a later one, never lost
 * and never sent twice. Each item carries its position, so an SSE client can resume with `Last-Event-ID`.
 * Ends when `signal` aborts (or the consumer stops iterating).
 * @throws ConfigurationError for malformed options
 */
export async function* liveQuery<TValue>(
  options: LiveQueryOptions<TValue>,
): AsyncGenerator<LiveItem<TValue>> {
  const { runner, projection, query, relevant, signal } = options ?? ({} as LiveQueryOptions<TValue>);
  if (typeof runner?.subscribe !== 'function' || typeof runner.readAt !== 'function')
    throw new ConfigurationError('liveQuery(): runner must be a projection runner');
  if (typeof query !== 'function') throw new ConfigurationError('liveQuery(): query must be a function');
  const pending: ProjectionChange[] = [];
  let wake: (() => void) | undefined;
  const unsubscribe = runner.subscribe(projection, (change) => {
    pending.push(change);
    wake?.();
  });
  const onAbort = () => wake?.();
  signal?.addEventListener('abort', onAbort);
  try {
    let last = options.after;
    const first = await runner.readAt(projection, query);
    if (last === undefined || compareLogPositions(first.position, last) > 0) {
      last = first.position;
      yield first;
    }
    for (;;) {
      if (signal?.aborted) return;
      if (pending.length === 0) {
        await new Promise<void>((resolve) => {
          wake = resolve;
        });
        wake = undefined;
        continue;
      }
      const changes = pending.splice(0);
      const newer = changes.filter((c) => last === undefined || compareLogPositions(c.position, last) > 0);
      if (!newer.some((c) => relevant === undefined || c.events.some((e) => relevant(e.event)))) continue;
      const item = await runner.readAt(projection, query);
      if (last !== undefined && compareLogPositions(item.position, last) <= 0) continue;
      last = item.position;
      yield item;
    }
  } finally {
    unsubscribe();
    signal?.removeEventListener('abort', onAbort);
  }
}

/** Options of {@link createProjectionFollower}. */
export interface ProjectionFollowerOptions {
  /** The projection store of the database the runner writes (only its `load` is used). */
  readonly store: Pick<ProjectionStore<unknown>, 'load'>;
  /** The projection's name. */
  readonly projection: string;
  /** Attempts of `readAt` when batches keep committing while it reads. @default 100 */
  readonly maxReadAttempts?: number;
}

/**
 * A projection's change feed in a process that does not run it: a `runner` for {@link liveQuery} there. Give
 * `handle` every event the runner applied (the runner's `onApplied` publishes them; a broadcast consumer of
 * that destination in this process calls `handle`, one event at a time).
 */
export interface ProjectionFollower extends Pick<ProjectionRunner, 'subscribe' | 'readAt'> {
  /** Tells the subscribers that `event` was applied, at the projection's checkpoint as read now. */
  handle(event: AnyEvent): Promise<void>;
}

/**
 * Follows a projection that another process runs. `readAt` reads the checkpoint, runs the read, and reads the
 * checkpoint again: the same position both times means no batch committed in between (the checkpoint moves in
 * each batch's transaction), so the answer is at that position; otherwise it reads again. With `liveQuery`, an
 * update that commits while a client subscribes is neither lost nor sent twice here either, provided `handle`
 * gets every applied event (a broadcast consumer: everything published after its `start()`).
 * @throws ConfigurationError for malformed options
 */
export function createProjectionFollower(options: ProjectionFollowerOptions): ProjectionFollower {
  const { store, projection } = options ?? ({} as ProjectionFollowerOptions);
  if (typeof store?.load !== 'function')
    throw new ConfigurationError('createProjectionFollower(): store must be a projection store');
  if (typeof projection !== 'string' || projection.length === 0)
    throw new ConfigurationError('createProjectionFollower(): projection must name a projection');
  const maxAttempts = options.maxReadAttempts ?? 100;
  if (!(Number.isSafeInteger(maxAttempts) && maxAttempts >= 1))
    throw new ConfigurationError('createProjectionFollower(): maxReadAttempts must be a positive integer');
  const listeners = new Set<(change: ProjectionChange) => void>();
  const checked = (name: string) => {
    if (name !== projection)
      throw new ConfigurationError(`projection follower: follows ${projection}, not ${String(name)}`);
  };
  const position = async () => (await store.load(projection))?.position ?? '0';
  return {
    subscribe(name, listener) {
      checked(name);
      if (typeof listener !== 'function')
        throw new ConfigurationError('subscribe() takes a listener function');
      listeners.add(listener);
      return () => {
        listeners.delete(listener);
      };
    },
    async readAt(name, read) {
      checked(name);
      if (typeof read !== 'function') throw new ConfigurationError('readAt() takes a function');
      for (let attempt = 1; ; attempt++) {
        const before = await position();
        const value = await read();
        const after = await position();
        if (before === after) return { position: before, value };
        if (attempt >= maxAttempts)
          throw new Error(`${projection}: batches kept committing during ${maxAttempts} reads`);
      }
    },
    async handle(event) {
      if (listeners.size === 0) return;
      const at = await position();
      const change: ProjectionChange = { projection, position: at, events: [{ position: at, event }] };
      for (const l of listeners) l(change);
    },
  };
}
