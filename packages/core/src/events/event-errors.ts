import { CqrsError } from '../errors/cqrs-error.ts';

/** One event handler that failed. */
export interface EventHandlerFailure {
  readonly eventType: string;
  readonly eventId: string;
  readonly handler: string;
  readonly error: unknown;
}

/** One or more event handlers failed; every other handler still ran. Lists each failure. */
export class EventDispatchError extends CqrsError {
  readonly failures: readonly EventHandlerFailure[];
  /** The underlying errors, as in `AggregateError`. */
  readonly errors: readonly unknown[];

  constructor(failures: readonly EventHandlerFailure[]) {
    const names = failures.map(
      (f) => `${f.handler} (${f.eventType}): ${f.error instanceof Error ? f.error.message : String(f.error)}`,
    );
    super('CQRS_EVENT_DISPATCH', `${failures.length} event handler(s) failed: ${names.join('; ')}`);
    this.name = 'EventDispatchError';
    this.failures = Object.freeze([...failures]);
    this.errors = Object.freeze(failures.map((f) => f.error));
  }
}

/** Events kept producing events beyond the configured depth (usually a cycle). */
export class EventDepthExceededError extends CqrsError {
  readonly eventType: string;
  readonly maxDepth: number;
  constructor(eventType: string, maxDepth: number) {
    super(
      'CQRS_EVENT_DEPTH_EXCEEDED',
      `${eventType} was produced at nesting depth ${maxDepth + 1}, beyond the limit of ${maxDepth}: do event handlers form a cycle?`,
    );
    this.name = 'EventDepthExceededError';
    this.eventType = eventType;
    this.maxDepth = maxDepth;
  }
}
