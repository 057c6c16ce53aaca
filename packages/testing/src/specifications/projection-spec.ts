import {
  type AnyEvent,
  type AnyProjection,
  createInMemoryEventStore,
  createInMemoryOutboxStore,
  createInMemoryProjectionStore,
  createProjectionRunner,
  type DocumentProjection,
  type InMemoryProjectionStore,
  type ProjectionRunner,
  type ProjectionStatus,
} from '@cqrs-ts/core';
import { waitFor } from '../wait-for.ts';
import { expectEqual } from './assertions.ts';

/** What comes after `given`: the expectations, each resolving when it holds and rejecting with the difference. */
export interface ProjectionThen<TReadModel> {
  /**
   * The read model equals `expected`, after the given events were applied and again after a rebuild that replays
   * them (a projection that is not deterministic, or whose reset leaves something behind, fails the second check).
   */
  thenReadModel(expected: TReadModel): Promise<void>;
}

/** Given/when/then for a projection. */
export interface ProjectionSpecification<TReadModel> {
  /** The events in the log, in order (events of types the projection does not handle are skipped by it). */
  given(...events: readonly (AnyEvent | readonly AnyEvent[])[]): ProjectionThen<TReadModel>;
}

/** Options of {@link projectionSpec} for a batch projection: how to read its read model from the store. */
export interface ProjectionSpecOptions<TReadModel> {
  /**
   * Reads the read model after a catch-up. Required for a batch projection (it writes tables of yours); for a
   * document projection it defaults to every document by id (`Record<id, document>`).
   */
  readonly read?: (store: InMemoryProjectionStore) => Promise<TReadModel> | TReadModel;
}

const flat = (events: readonly (AnyEvent | readonly AnyEvent[])[]): AnyEvent[] =>
  events.flatMap((e) => (Array.isArray(e) ? e : [e as AnyEvent]));

/**
 * Given/when/then tests for a projection, in memory: given events in the log, then the read model. The events go
 * through the real runner (checkpoint, batches, poison policy), then the projection is rebuilt in place and read
 * again, so every specification also checks that replaying the log gives the same read model.
 *
 * @example
 * await projectionSpec(cartTotals)
 *   .given(ItemAdded.create({ cartId: 'c1', price: 5 }), ItemAdded.create({ cartId: 'c1', price: 7 }))
 *   .thenReadModel({ c1: { items: 2, total: 12 } });
 */
export function projectionSpec<TDoc>(
  projection: DocumentProjection<TDoc>,
  options?: ProjectionSpecOptions<Record<string, TDoc>>,
): ProjectionSpecification<Record<string, TDoc>>;
export function projectionSpec<TReadModel>(
  projection: AnyProjection,
  options: ProjectionSpecOptions<TReadModel> & {
    readonly read: ProjectionSpecOptions<TReadModel>['read'] & {};
  },
): ProjectionSpecification<TReadModel>;
export function projectionSpec(
  projection: AnyProjection,
  options: ProjectionSpecOptions<unknown> = {},
): ProjectionSpecification<unknown> {
  if (projection?.style !== 'document' && projection?.style !== 'batch')
    throw new TypeError(
      'projectionSpec: projection must come from defineDocumentProjection or defineProjection',
    );
  if (projection.style === 'batch' && typeof options.read !== 'function')
    throw new TypeError('projectionSpec: a batch projection needs options.read (store) => read model');
  const read =
    options.read ??
    ((store: InMemoryProjectionStore) =>
      Object.fromEntries(store.documents({ name: projection.name, version: projection.version })));
  return {
    given(...given) {
      const events = flat(given);
      return {
        async thenReadModel(expected) {
          const outbox = createInMemoryOutboxStore();
          const log = createInMemoryEventStore({ outbox });
          const store = createInMemoryProjectionStore();
          // one attempt: a failing event fails the specification at once, naming the event
          const runner = createProjectionRunner({
            log,
            store,
            projections: [projection],
            retry: { attempts: 1 },
          });
          try {
            if (events.length > 0) await outbox.transaction((tx) => outbox.append(tx, events));
            await runner.catchUp(projection.name);
            await failedIfStopped(runner, projection.name);
            expectEqual(await read(store), expected, `the read model after ${events.length} events`);
            await runner.rebuild(projection.name, 'in-place');
            await runner.catchUp(projection.name);
            await failedIfStopped(runner, projection.name);
            expectEqual(await read(store), expected, 'the read model after a rebuild (the log replayed)');
          } finally {
            await runner.stop();
          }
        },
      };
    },
  };
}

async function failedIfStopped(runner: ProjectionRunner, name: string): Promise<void> {
  const stopped = stoppedOn(await runner.status(name));
  if (stopped !== undefined) throw new Error(stopped);
}

/** Why a projection stopped on a poison event, or `undefined`. */
function stoppedOn(status: ProjectionStatus): string | undefined {
  const e = status.lastError;
  if (e === null || e.outcome !== 'stopped') return undefined;
  return `projection ${status.name} stopped on event ${e.eventType} ${e.eventId} at ${e.position}: ${e.error}`;
}

/**
 * Resolves once every named projection of `runner` has applied
 * everything in the log: for tests that write through the mediator and then read a projected model.
 * @throws Error `timed out waiting for ...` after `timeoutMs`, naming the projections still behind.
 */
export async function projectionsCaughtUp(
  runner: Pick<ProjectionRunner, 'status'>,
  names: readonly string[],
  timeoutMs = 10_000,
): Promise<void> {
  let behind: string[] = [...names];
  await waitFor(
    async () => {
      const statuses = await Promise.all(behind.map((n) => runner.status(n)));
      for (const s of statuses) {
        const stopped = stoppedOn(s);
        if (stopped !== undefined) throw new Error(stopped);
      }
      behind = behind.filter((_, i) => statuses[i]!.position !== statuses[i]!.head);
      return behind.length === 0;
    },
    timeoutMs,
    `projections to catch up (${names.join(', ')})`,
  ).catch((e: unknown) => {
    throw e instanceof Error && e.message.startsWith('timed out')
      ? new Error(`${e.message}; behind: ${behind.join(', ')}`)
      : e;
  });
}
