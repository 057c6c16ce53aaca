/**
 * `@cqrs-ts/testing`: given/when/then specifications for deciders and command handlers, an in-memory mediator
 * for users' tests, and `waitFor`. Saga specifications are in `@cqrs-ts/testing/saga`, the adapter contract
 * suites in `@cqrs-ts/testing/contracts`.
 * @module
 */
import {
  type AnyEvent,
  type AnyEventDefinition,
  createBehavior,
  createMediator,
  type ErrorInfo,
  type InferMessage,
  type Mediator,
  type MediatorOptions,
  on,
} from '@cqrs-ts/core';

/** A failure reported by an event handler. */
export interface RecordedFailure {
  readonly error: unknown;
  readonly info: ErrorInfo;
}

/** Options of {@link createTestMediator}. */
export interface TestMediatorOptions extends Omit<MediatorOptions, 'onError'> {
  /** Events to record even when no handler of the application listens to them. */
  readonly record?: readonly AnyEventDefinition[];
  /** Also forward failures to this hook. */
  readonly onError?: MediatorOptions['onError'];
}

/** A mediator plus what a test needs to observe it. */
export interface TestMediator {
  readonly mediator: Mediator;
  /** Every event dispatched to a handler (or recorded through `record`), in dispatch order. */
  readonly events: readonly AnyEvent[];
  /** Every event handler failure reported to `onError`. */
  readonly failures: readonly RecordedFailure[];
  /** Resolves when all dispatched work, fire-and-forget publishes included, has finished. No sleeps. */
  idle(): Promise<void>;
  /** Recorded events of one definition, typed. */
  eventsOf<TDefinition extends AnyEventDefinition>(definition: TDefinition): InferMessage<TDefinition>[];
  /** The single recorded event of one definition; throws a readable error when there are none or several. */
  single<TDefinition extends AnyEventDefinition>(definition: TDefinition): InferMessage<TDefinition>;
  /** Forgets recorded events and failures. */
  reset(): void;
}

/**
 * Builds a mediator for tests: records events and handler failures, and waits until idle.
 *
 * @example
 * const t = createTestMediator({ handlers: [handle(PlaceOrder, placeOrder)], record: [OrderPlaced] });
 * await t.mediator.send(PlaceOrder.create({ sku: 'A' }));
 * await t.idle();
 * expect(t.single(OrderPlaced).payload.sku).toBe('A');
 */
export function createTestMediator(options: TestMediatorOptions = {}): TestMediator {
  const events: AnyEvent[] = [];
  const failures: RecordedFailure[] = [];
  const seen = new WeakSet<object>();
  const remember = (event: AnyEvent) => {
    if (!seen.has(event)) {
      seen.add(event);
      events.push(event);
    }
  };
  const recorder = createBehavior(
    'test-recorder',
    () => (message, context, next) => {
      remember(message as AnyEvent);
      return next(message, context);
    },
    { kinds: ['event'] },
  );
  const spies = (options.record ?? []).map((definition) =>
    on(definition, (event: AnyEvent) => remember(event)),
  );
  const mediator = createMediator({
    ...options,
    handlers: [...(options.handlers ?? []), ...spies],
    behaviors: [recorder, ...(options.behaviors ?? [])],
    onError: (error, info) => {
      failures.push({ error, info });
      options.onError?.(error, info);
    },
  });
  const eventsOf = <TDefinition extends AnyEventDefinition>(definition: TDefinition) =>
    events.filter((e) => e.type === definition.type) as InferMessage<TDefinition>[];
  return {
    mediator,
    events,
    failures,
    idle: () => mediator.whenIdle(),
    eventsOf,
    single(definition) {
      const found = eventsOf(definition);
      if (found.length !== 1) {
        const all = events.map((e) => e.type).join(', ') || 'none';
        throw new Error(`expected exactly one ${definition.type}, found ${found.length} (recorded: ${all})`);
      }
      return found[0]!;
    },
    reset() {
      events.length = 0;
      failures.length = 0;
    },
  };
}

export type { ErrorExpectation, EventShape } from './specifications/assertions.ts';
export type {
  Decider,
  DeciderSpecification,
  DeciderThen,
  DeciderWhen,
} from './specifications/decider-spec.ts';
export { deciderSpec } from './specifications/decider-spec.ts';
export type {
  HandlerSpecification,
  HandlerThen,
  SpecApplication,
  SpecWorld,
} from './specifications/handler-spec.ts';
export { handlerSpec } from './specifications/handler-spec.ts';
export type {
  ProjectionSpecification,
  ProjectionSpecOptions,
  ProjectionThen,
} from './specifications/projection-spec.ts';
export { projectionSpec, projectionsCaughtUp } from './specifications/projection-spec.ts';
export { waitFor } from './wait-for.ts';
