import { CqrsError } from '@cqrs-ts/core';

/** Why a RabbitMQ operation failed. */
export const RABBIT_FAILURE_REASONS = [
  /** No connection or channel (broker down, connection or channel closed while in flight). */
  'connection',
  /** The broker nacked the message (internal error, queue overflow with `reject-publish`). */
  'nacked',
  /** `mandatory` message routed to no queue (basic.return). */
  'unroutable',
  /** No confirm within `confirmTimeoutMs` (e.g. connection blocked by a resource alarm). */
  'timeout',
  /** The publish was aborted (relay stopping). */
  'aborted',
  /** The message itself is unacceptable (too big, routing key too long, header table too big). */
  'invalid',
  /** Declaring the topology failed (e.g. a queue exists with different arguments). */
  'topology',
] as const;
export type RabbitFailureReason = (typeof RABBIT_FAILURE_REASONS)[number];

/**
 * A RabbitMQ failure, code `CQRS_BROKER`. `reason` classifies it; `retryable` is `false` only for
 * `invalid` messages and `topology` errors (retrying the same thing cannot succeed).
 */
export class RabbitMqError extends CqrsError {
  readonly reason: RabbitFailureReason;
  readonly retryable: boolean;
  /** The AMQP reply code when the broker gave one (e.g. 312 NO_ROUTE, 406 PRECONDITION_FAILED). */
  readonly replyCode: number | undefined;

  constructor(
    reason: RabbitFailureReason,
    message: string,
    options?: { cause?: unknown; replyCode?: number },
  ) {
    super('CQRS_BROKER', `rabbitmq ${reason}: ${message}`, options);
    this.name = 'RabbitMqError';
    this.reason = reason;
    this.retryable = reason !== 'invalid' && reason !== 'topology';
    this.replyCode = options?.replyCode;
  }
}

/** Reads the AMQP reply code amqplib puts on channel/connection errors. @internal */
export function replyCodeOf(error: unknown): number | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'number' ? code : undefined;
}

/** Short text of an unknown error. @internal */
export function errorText(error: unknown): string {
  if (error instanceof Error) return `${error.name}: ${error.message}`.slice(0, 2000);
  return String(error).slice(0, 2000);
}
