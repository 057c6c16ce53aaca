import { CqrsError } from '@cqrs-ts/core';

/** A Kafka client failure (connection, produce, commit), code `CQRS_BROKER`; the client error is the `cause`. */
export class KafkaBrokerError extends CqrsError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('CQRS_BROKER', message, options);
    this.name = 'KafkaBrokerError';
  }
}

function find(error: unknown, predicate: (e: Record<string, unknown>) => boolean, depth = 0): boolean {
  if (error === null || typeof error !== 'object' || depth > 8) return false;
  const e = error as Record<string, unknown>;
  if (predicate(e)) return true;
  if (Array.isArray(e.errors)) {
    for (const inner of e.errors) if (find(inner, predicate, depth + 1)) return true;
  }
  return e.cause !== undefined && find(e.cause, predicate, depth + 1);
}

/** Whether a `@platformatic/kafka` error (or one of its nested errors) is the protocol error `apiId`. */
export function hasKafkaErrorCode(error: unknown, apiId: string): boolean {
  return find(error, (e) => e.apiId === apiId);
}
