import { CqrsError } from '@cqrs-ts/core';

/** Why a NATS operation failed; decides whether retrying can help. */
export const NATS_FAILURE_REASONS = [
  'timeout',
  'disconnected',
  'closed',
  'no-stream',
  'rejected',
  'too-large',
  'invalid',
  'cancelled',
  'skipped',
] as const;
export type NatsFailureReason = (typeof NATS_FAILURE_REASONS)[number];

const PERMANENT: ReadonlySet<NatsFailureReason> = new Set(['too-large', 'invalid']);

/**
 * A NATS/JetStream failure (code `CQRS_BROKER`). `reason` classifies it; `retryable` is `false` only for
 * failures that the same message can never get past (oversized, invalid subject or header).
 */
export class NatsBrokerError extends CqrsError {
  readonly reason: NatsFailureReason;
  readonly retryable: boolean;
  /** The JetStream API error code (`err_code`) when the server rejected the message. */
  readonly apiCode: number | undefined;

  constructor(
    reason: NatsFailureReason,
    message: string,
    options?: { cause?: unknown; apiCode?: number; retryable?: boolean },
  ) {
    super('CQRS_BROKER', message, options);
    this.name = 'NatsBrokerError';
    this.reason = reason;
    this.apiCode = options?.apiCode;
    this.retryable = options?.retryable ?? !PERMANENT.has(reason);
  }
}
