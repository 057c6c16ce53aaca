import { BrokerError, type BrokerFailureReason } from '@cqrs-ts/core';

/**
 * How this package classifies RabbitMQ failures into `BrokerError` reasons:
 *
 * - no connection or channel, or it closed while a message was in flight → `connection`
 * - no confirm within `confirmTimeoutMs` (e.g. a connection blocked by a resource alarm) → `timeout`
 * - the publisher or consumer was closed → `closed`
 * - the broker nacked the message (internal error, a full queue with `reject-publish`) → `rejected`
 * - a `mandatory` message routed to no queue (basic.return, reply code 312) → `unroutable`
 * - a body over `maxMessageBytes` → `too-large`; a missing id, a routing key or header over AMQP limits → `invalid`
 * - declaring an exchange or queue failed with `406 PRECONDITION_FAILED` (exists with other arguments) → `topology`
 * - the publish was aborted (the relay stopping) → `cancelled`; after a failure the rest of its key → `skipped`
 *
 * `nativeCode` is the AMQP reply code when the broker gave one.
 */

/** A `BrokerError` whose message names the package and the reason (`rabbitmq <reason>: <message>`). @internal */
export function rabbitError(
  reason: BrokerFailureReason,
  message: string,
  options?: { cause?: unknown; replyCode?: number },
): BrokerError {
  return new BrokerError(reason, `rabbitmq ${reason}: ${message}`, {
    ...(options?.cause !== undefined ? { cause: options.cause } : {}),
    ...(options?.replyCode !== undefined ? { nativeCode: options.replyCode } : {}),
  });
}

/** Reads the AMQP reply code amqplib puts on channel/connection errors. @internal */
export function replyCodeOf(error: unknown): number | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'number' ? code : undefined;
}

/** Classifies a failure to declare the topology: `406 PRECONDITION_FAILED` is a conflict, anything else the connection. @internal */
export function topologyError(error: unknown, what: string, text: string): BrokerError {
  const replyCode = replyCodeOf(error);
  return rabbitError(replyCode === 406 ? 'topology' : 'connection', `declaring ${what}: ${text}`, {
    cause: error,
    ...(replyCode !== undefined ? { replyCode } : {}),
  });
}
