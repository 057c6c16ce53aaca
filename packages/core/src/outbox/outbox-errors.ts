import { CqrsError } from '../errors/cqrs-error.ts';

/** Misuse of the outbox at run time, e.g. appending something that is not an event. */
export class OutboxError extends CqrsError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('CQRS_OUTBOX', message, options);
    this.name = 'OutboxError';
  }
}
