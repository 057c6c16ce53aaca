import { ConfigurationError } from '../errors/cqrs-error.ts';
import { compareLogPositions } from '../event-log/event-log.ts';
import type { AnyEvent } from '../messages/message.ts';
import type { ProjectionChange, ProjectionRunner } from './projection-runner.ts';

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
