import type { AnyEvent } from '../messages/message.ts';

/** Anything that accumulates events and hands them out once (an aggregate, a unit of work). */
export interface EventSource {
  /** Returns the pending events and forgets them: a second call returns only newer events. */
  pullEvents(): readonly AnyEvent[];
}

/**
 * A small base for event-sourced or state-based aggregates. `raise(event)` applies the change through `apply`
 * and records the event; `pullEvents()` hands recorded events out exactly once.
 *
 * @example
 * class Order extends AggregateRoot<OrderEvent> {
 *   status = 'new';
 *   place() { this.raise(OrderPlaced.create({ orderId: this.id })); }
 *   protected apply(event: OrderEvent) { if (OrderPlaced.is(event)) this.status = 'placed'; }
 * }
 */
export abstract class AggregateRoot<TEvent extends AnyEvent = AnyEvent> implements EventSource {
  #pending: TEvent[] = [];
  #version = 0;

  /** Number of events applied so far (loaded and raised). */
  get version(): number {
    return this.#version;
  }

  /** Applies one event to the state. Must not have side effects beyond this aggregate. */
  protected abstract apply(event: TEvent): void;

  /** Applies the event and records it for dispatch. */
  protected raise(event: TEvent): void {
    this.apply(event);
    this.#version++;
    this.#pending.push(event);
  }

  /** Rebuilds state from past events without recording them. */
  loadFromHistory(events: Iterable<TEvent>): this {
    for (const event of events) {
      this.apply(event);
      this.#version++;
    }
    return this;
  }

  /** Events raised since the last pull. */
  get pendingEvents(): readonly TEvent[] {
    return this.#pending;
  }

  pullEvents(): readonly TEvent[] {
    const events = this.#pending;
    this.#pending = [];
    return events;
  }
}

/** True for objects with a `pullEvents()` method. */
export function isEventSource(value: unknown): value is EventSource {
  return typeof (value as EventSource | null)?.pullEvents === 'function';
}
