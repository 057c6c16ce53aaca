import type { AnyEvent } from '@cqrs-ts/core';
import {
  didNotThrow,
  type ErrorExpectation,
  type EventShape,
  expectEqual,
  expectError,
  expectEvents,
  shapeOf,
} from './assertions.ts';

/** The three pure functions of an event-sourced aggregate. */
export interface Decider<TState, TCommand, TEvent extends AnyEvent> {
  readonly initialState: () => TState;
  readonly evolve: (state: TState, event: TEvent) => TState;
  /** The events a command produces given the state; throws to refuse the command. */
  readonly decide: (
    command: TCommand,
    state: TState,
  ) => TEvent | readonly TEvent[] | Promise<TEvent | readonly TEvent[]>;
}

/**
 * What comes after `when`: the expectations, each resolving when it holds and rejecting with the difference.
 * (There is no bare `then`: an object with one is a thenable, and `await spec.when(…)` would hang.)
 */
export interface DeciderThen<TState, TEvent extends AnyEvent> {
  /** The command produced exactly these events, in order (types and payloads compared). */
  thenEvents(expected: TEvent | EventShape | readonly (TEvent | EventShape)[]): Promise<void>;
  /** The state after the given events and the produced ones is `expected`. */
  thenState(expected: TState): Promise<void>;
  /** The command produced no event. */
  thenNothingHappened(): Promise<void>;
  /** The command was refused with an error matching `expected` (any error when omitted). */
  thenThrows(expected?: ErrorExpectation): Promise<void>;
}

/** A specification after `given`. */
export interface DeciderWhen<TState, TCommand, TEvent extends AnyEvent> {
  when(command: TCommand): DeciderThen<TState, TEvent>;
}

/** Given/when/then for a decider. */
export interface DeciderSpecification<TState, TCommand, TEvent extends AnyEvent> {
  /** The aggregate's past events (none: a new aggregate). */
  given(...events: readonly (TEvent | readonly TEvent[])[]): DeciderWhen<TState, TCommand, TEvent>;
  /** The aggregate's current state, instead of its past events. */
  givenState(state: TState): DeciderWhen<TState, TCommand, TEvent>;
}

const label = (command: unknown) =>
  typeof (command as { type?: unknown })?.type === 'string'
    ? (command as { type: string }).type
    : 'the command';

/**
 * Given/when/then tests for an event-sourced aggregate written as a decider (as Emmett's `DeciderSpecification`):
 * given past events (or a state), when a command, then the events it produces, the state they lead to, nothing,
 * or the error it is refused with. In memory, no database; a failure shows the difference.
 *
 * @example
 * const spec = deciderSpec({ initialState, evolve, decide });
 * await spec.given(CartOpened.create({ cartId: 'c1' })).when(addItem('c1', 'sku-1')).thenEvents(ItemAdded.create({ cartId: 'c1', sku: 'sku-1' }));
 */
export function deciderSpec<TState, TCommand, TEvent extends AnyEvent>(
  decider: Decider<TState, TCommand, TEvent>,
): DeciderSpecification<TState, TCommand, TEvent> {
  for (const name of ['initialState', 'evolve', 'decide'] as const) {
    if (typeof decider?.[name] !== 'function') throw new TypeError(`deciderSpec: ${name} must be a function`);
  }
  const from = (start: () => TState) => ({
    when(command: TCommand): DeciderThen<TState, TEvent> {
      const what = label(command);
      const run = async () => {
        const state = start();
        const decided = await decider.decide(command, state);
        const events = (Array.isArray(decided) ? decided : [decided]) as TEvent[];
        return { state, events };
      };
      const mustSucceed = async () => {
        try {
          return await run();
        } catch (error) {
          throw new Error(`${what} was refused: ${error instanceof Error ? error.message : String(error)}`, {
            cause: error,
          });
        }
      };
      return {
        async thenEvents(expected) {
          const { events } = await mustSucceed();
          const list = (Array.isArray(expected) ? expected : [expected]) as (TEvent | EventShape)[];
          expectEvents(events, list, `${what} produced other events than expected`);
        },
        async thenState(expected) {
          const { state, events } = await mustSucceed();
          expectEqual(
            events.reduce(decider.evolve, state),
            expected,
            `the state after ${what} is not the one expected`,
          );
        },
        async thenNothingHappened() {
          const { events } = await mustSucceed();
          expectEqual(events.map(shapeOf), [], `${what} produced events where none were expected`);
        },
        async thenThrows(expected) {
          let events: TEvent[];
          try {
            ({ events } = await run());
          } catch (error) {
            expectError(error, expected, `${what} was refused with another error`);
            return;
          }
          didNotThrow(
            what,
            `it produced ${events.length === 0 ? 'no event' : events.map((e) => e.type).join(', ')}`,
          );
        },
      };
    },
  });
  return {
    given: (...events) => {
      const past = events.flat() as TEvent[];
      return from(() => past.reduce(decider.evolve, decider.initialState()));
    },
    givenState: (state) =>
      from(() => {
        try {
          return structuredClone(state);
        } catch {
          return state;
        }
      }),
  };
}
