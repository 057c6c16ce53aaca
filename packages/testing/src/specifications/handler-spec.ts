import {
  type AnyCommand,
  type AnyEvent,
  type Behavior,
  createInMemoryEventStore,
  createInMemoryOutboxStore,
  createInMemoryUnitOfWork,
  createLogDecoder,
  createMediator,
  type EventSourcedRepository,
  type HandlerRegistration,
  type InferResult,
  type InMemoryEventStore,
  type InMemoryOutboxStore,
  type InMemoryStoreTransaction,
  type InMemoryUnitOfWork,
  LOG_START,
  type Mediator,
  type MediatorOptions,
  type StateRepository,
} from '@cqrs-ts/core';
import {
  didNotThrow,
  type ErrorExpectation,
  type EventShape,
  expectEqual,
  expectError,
  expectEvents,
} from './assertions.ts';

/** The in-memory world a handler specification runs in. */
export interface SpecWorld {
  /** The event store and log: give its repositories to your handlers. */
  readonly eventStore: InMemoryEventStore;
  readonly outbox: InMemoryOutboxStore;
  /** The unit of work every command runs in (already in the mediator's behaviors). */
  readonly unitOfWork: InMemoryUnitOfWork;
  /** Runs `fn` in a committed transaction of the world (for `given` setups). */
  transaction<T>(fn: (tx: InMemoryStoreTransaction) => Promise<T> | T): Promise<T>;
}

/** What `build` returns: the handlers under test and, optionally, more mediator options. */
export interface SpecApplication extends Omit<MediatorOptions, 'handlers' | 'behaviors'> {
  readonly handlers: readonly HandlerRegistration[];
  /** Behaviors around the unit of work (`retry()`, `timeout()`, `validation()`...). */
  readonly behaviors?: readonly Behavior[];
}

/** A repository the specification can read a state back from. */
type Readable<TState> =
  | Pick<StateRepository<TState, InMemoryStoreTransaction>, 'load'>
  | Pick<EventSourcedRepository<TState, AnyEvent, InMemoryStoreTransaction>, 'load'>;

/**
 * Expectations after `when`. Each resolves when it holds and rejects with the difference. (There is no bare
 * `then`: an object with one is a thenable, and `await spec.when(…)` would hang.)
 */
export interface HandlerThen<TResult> {
  /** Checks the events produced and the result at once. */
  thenOutcome(expected: {
    readonly events?: readonly (AnyEvent | EventShape)[];
    readonly result?: TResult;
  }): Promise<void>;
  /** The command committed exactly these events, in order (types and payloads). */
  thenEvents(expected: readonly (AnyEvent | EventShape)[]): Promise<void>;
  /** The command returned `expected`. */
  thenResult(expected: TResult): Promise<void>;
  /** After the command, `repository` holds `expected` for `id` (the state of a state-based or event-sourced aggregate). */
  thenState<TState>(repository: Readable<TState>, id: string, expected: TState): Promise<void>;
  /** The command committed no event. */
  thenNothingHappened(): Promise<void>;
  /** The command failed with an error matching `expected`, and nothing it wrote was committed. */
  thenThrows(expected?: ErrorExpectation): Promise<void>;
}

/** A handler specification after its `given` steps. */
export interface HandlerSpecification {
  /** Past events of a stream, appended before the command (repeat for several streams). */
  given(streamId: string, events: readonly AnyEvent[]): HandlerSpecification;
  /** Any other prior state, set up in a committed transaction of the world (e.g. `repo.save(tx, …)`). */
  given(
    setup: (tx: InMemoryStoreTransaction, world: SpecWorld) => Promise<void> | void,
  ): HandlerSpecification;
  when<TCommand extends AnyCommand>(command: TCommand): HandlerThen<InferResult<TCommand>>;
}

type Step =
  | { readonly stream: string; readonly events: readonly AnyEvent[] }
  | { readonly setup: (tx: InMemoryStoreTransaction, world: SpecWorld) => Promise<void> | void };

const decoder = createLogDecoder();

/**
 * Given/when/then tests for command handlers, in memory: each run builds a fresh world (in-memory event store,
 * outbox and unit of work), your handlers from it, sets up the `given` events and state, sends the command
 * through a mediator with the unit of work, and compares what it committed. No database, no sleeps; a failure
 * shows the difference.
 *
 * @example
 * const spec = handlerSpec((world) => {
 *   const carts = createEventSourcedRepository({ name: 'cart', store: world.eventStore, ... });
 *   return { handlers: [handle(AddItem, (cmd, ctx) => carts.update(ctx, cmd.payload.cartId, decide(cmd)))] };
 * });
 * await spec.given('cart-c1', [CartOpened.create({ cartId: 'c1' })]).when(AddItem.create({ ... })).thenEvents([...]);
 */
export function handlerSpec(build: (world: SpecWorld) => SpecApplication): HandlerSpecification {
  if (typeof build !== 'function')
    throw new TypeError('handlerSpec: build must be a function (world) => ({ handlers })');
  const make = (steps: readonly Step[]): HandlerSpecification => ({
    given(
      a: string | ((tx: InMemoryStoreTransaction, world: SpecWorld) => Promise<void> | void),
      events?: readonly AnyEvent[],
    ) {
      if (typeof a === 'function') return make([...steps, { setup: a }]);
      if (typeof a !== 'string' || !Array.isArray(events))
        throw new TypeError('handlerSpec: given(streamId, events) or given(setup)');
      return make([...steps, { stream: a, events }]);
    },
    when<TCommand extends AnyCommand>(command: TCommand): HandlerThen<InferResult<TCommand>> {
      const what = command?.type ?? 'the command';
      const run = async () => {
        const outbox = createInMemoryOutboxStore({ archive: true });
        const eventStore = createInMemoryEventStore({ outbox });
        const unitOfWork = createInMemoryUnitOfWork({ outbox });
        const world: SpecWorld = {
          eventStore,
          outbox,
          unitOfWork,
          transaction: (fn) => outbox.transaction(fn),
        };
        const app = build(world);
        const mediator: Mediator = createMediator({
          ...app,
          behaviors: [...(app.behaviors ?? []), unitOfWork],
          handlers: app.handlers,
        });
        for (const step of steps) {
          if ('stream' in step) {
            await outbox.transaction((tx) =>
              eventStore.appendToStream(tx, step.stream, step.events, { expectedVersion: 'any' }),
            );
          } else await outbox.transaction((tx) => step.setup(tx, world));
        }
        const before = (await readAll(eventStore, LOG_START)).position;
        let result: { readonly value: unknown } | { readonly error: unknown };
        try {
          result = { value: await mediator.send(command) };
        } catch (error) {
          result = { error };
        }
        await mediator.whenIdle();
        const produced = await Promise.all(
          (await readAll(eventStore, before)).entries.map((e) => decoder.decode(e)),
        );
        return { world, result, produced };
      };
      const succeeded = async () => {
        const r = await run();
        if ('error' in r.result) {
          const e = r.result.error;
          throw new Error(`${what} failed: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
        }
        return { ...r, value: r.result.value };
      };
      return {
        async thenOutcome(expected) {
          const r = await succeeded();
          if (expected.events !== undefined)
            expectEvents(r.produced, expected.events, `${what} committed other events than expected`);
          if ('result' in expected)
            expectEqual(r.value, expected.result, `${what} returned another result than expected`);
        },
        async thenEvents(expected) {
          const r = await succeeded();
          expectEvents(r.produced, expected, `${what} committed other events than expected`);
        },
        async thenResult(expected) {
          const r = await succeeded();
          expectEqual(r.value, expected, `${what} returned another result than expected`);
        },
        async thenState(repository, id, expected) {
          const r = await succeeded();
          const loaded = await r.world.transaction((tx) => repository.load(tx, id));
          expectEqual(loaded?.state, expected, `after ${what}, ${id} is not in the state expected`);
        },
        async thenNothingHappened() {
          const r = await succeeded();
          expectEvents(r.produced, [], `${what} committed events where none were expected`);
        },
        async thenThrows(expected) {
          const r = await run();
          if (!('error' in r.result)) {
            didNotThrow(what, `it returned ${JSON.stringify(r.result.value) ?? 'undefined'}`);
          }
          expectError(r.result.error, expected, `${what} failed with another error`);
          expectEvents(r.produced, [], `${what} failed, yet events were committed`);
        },
      };
    },
  });
  return make([]);
}

async function readAll(
  store: InMemoryEventStore,
  after: string,
): Promise<{ entries: Awaited<ReturnType<InMemoryEventStore['read']>>['entries']; position: string }> {
  const entries = [];
  let position = after;
  for (;;) {
    const batch = await store.read({ after: position, limit: 10_000 });
    entries.push(...batch.entries);
    if (batch.entries.length === 0) return { entries, position };
    position = batch.position;
  }
}
