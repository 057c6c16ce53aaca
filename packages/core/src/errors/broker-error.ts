import { CqrsError, isCqrsError } from './cqrs-error.ts';

/**
 * Why a broker operation failed, as a broker package classifies its client's native error. Each reason has a
 * {@link BrokerFailureScope} ({@link BROKER_FAILURE_SCOPES}) that tells what it says about the message:
 *
 * | reason        | scope         | retryable | meaning                                                                       |
 * | ------------- | ------------- | --------- | ----------------------------------------------------------------------------- |
 * | `connection`  | `destination` | yes       | no connection to the broker, or it was lost while the operation was in flight |
 * | `timeout`     | `destination` | yes       | the broker did not acknowledge in time (the message may have arrived)          |
 * | `unavailable` | `destination` | yes       | reachable, but cannot take messages there now (no stream, topic or leader, a resource alarm, no responders) |
 * | `closed`      | `destination` | yes       | the client (publisher, consumer, connection) was closed by its owner          |
 * | `rejected`    | `message`     | yes       | the broker refused this message (a negative acknowledgement, an error for this record) |
 * | `unroutable`  | `message`     | yes       | accepted, but routed to no queue                                              |
 * | `too-large`   | `message`     | no        | the message exceeds a size limit of the broker                                |
 * | `invalid`     | `message`     | no        | cannot be sent as it is: invalid subject, routing key, topic, header or body  |
 * | `unknown`     | `message`     | yes       | anything the package could not classify                                       |
 * | `topology`    | `setup`       | no        | declaring streams, exchanges, queues or topics failed or conflicts            |
 * | `cancelled`   | `none`        | yes       | aborted (the caller's signal, a stop) before it completed                     |
 * | `skipped`     | `none`        | yes       | not sent: an earlier message with the same key failed in the same call        |
 */
export const BROKER_FAILURE_REASONS = [
  'connection',
  'timeout',
  'unavailable',
  'closed',
  'rejected',
  'unroutable',
  'too-large',
  'invalid',
  'unknown',
  'topology',
  'cancelled',
  'skipped',
] as const;
export type BrokerFailureReason = (typeof BROKER_FAILURE_REASONS)[number];

/**
 * What a failure says about the message: `destination`, the broker or the destination is failing and any
 * message would fail now (pause, spend no message's attempts); `message`, this message failed (counts toward
 * its dead-lettering); `setup`, the configuration is wrong (fix it, retrying does not help); `none`, the
 * message was not attempted (release it as it was).
 */
export type BrokerFailureScope = 'destination' | 'message' | 'setup' | 'none';

/** The scope of each {@link BrokerFailureReason}. */
export const BROKER_FAILURE_SCOPES: Readonly<Record<BrokerFailureReason, BrokerFailureScope>> = Object.freeze(
  {
    connection: 'destination',
    timeout: 'destination',
    unavailable: 'destination',
    closed: 'destination',
    rejected: 'message',
    unroutable: 'message',
    'too-large': 'message',
    invalid: 'message',
    unknown: 'message',
    topology: 'setup',
    cancelled: 'none',
    skipped: 'none',
  },
);

const NOT_RETRYABLE: ReadonlySet<BrokerFailureReason> = new Set(['too-large', 'invalid', 'topology']);

/**
 * A broker operation failed (code `CQRS_BROKER`): the one error class of every broker package. `reason`
 * classifies the native error (kept as `cause`); `retryable` is `false` when the same message or configuration
 * can never succeed; `scope` tells a failing destination from a bad message. Callers branch on these, never on
 * the client's own error types.
 */
export class BrokerError extends CqrsError {
  readonly reason: BrokerFailureReason;
  readonly retryable: boolean;
  readonly scope: BrokerFailureScope;
  /** The broker's own code when it gave one: a JetStream `err_code`, an AMQP reply code, a Kafka error name. */
  readonly nativeCode: number | string | undefined;

  /**
   * @param options.retryable - overrides the reason's default (only `too-large`, `invalid` and `topology` are
   *   not retryable).
   */
  constructor(
    reason: BrokerFailureReason,
    message: string,
    options?: { cause?: unknown; retryable?: boolean; nativeCode?: number | string },
  ) {
    super('CQRS_BROKER', message, options);
    this.name = 'BrokerError';
    this.reason = reason;
    this.scope = BROKER_FAILURE_SCOPES[reason] ?? 'message';
    this.retryable = options?.retryable ?? !NOT_RETRYABLE.has(reason);
    this.nativeCode = options?.nativeCode;
  }
}

/**
 * `true` when `error` is a broker failure of the destination rather than of a message (reason `connection`,
 * `timeout`, `unavailable` or `closed`): every message would fail now, so none should spend an attempt. Works
 * across copies of this package.
 */
export function isDestinationFailure(error: unknown): boolean {
  if (!isCqrsError(error, 'CQRS_BROKER')) return false;
  const reason = (error as { reason?: unknown }).reason;
  return typeof reason === 'string' && BROKER_FAILURE_SCOPES[reason as BrokerFailureReason] === 'destination';
}
