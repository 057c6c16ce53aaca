import { BrokerError, type BrokerFailureReason } from '@cqrs-ts/core';
import { connectionErrorCode } from '@cqrs-ts/core/spi';
import { TimeoutError } from '@platformatic/kafka';

/**
 * How this package classifies `@platformatic/kafka` failures into `BrokerError` reasons (`nativeCode` is the
 * Kafka error name, e.g. `MESSAGE_TOO_LARGE`, or the client's error code):
 *
 * - `MESSAGE_TOO_LARGE`, `RECORD_LIST_TOO_LARGE` → `too-large`
 * - `INVALID_TOPIC_EXCEPTION`, `INVALID_RECORD`, `CORRUPT_MESSAGE`, an invalid topic name → `invalid`
 * - `UNKNOWN_TOPIC_OR_PARTITION`, `LEADER_NOT_AVAILABLE`, `NOT_LEADER_OR_FOLLOWER`, `NOT_ENOUGH_REPLICAS*`,
 *   `BROKER_NOT_AVAILABLE`, `COORDINATOR_NOT_AVAILABLE`, a topic without partitions → `unavailable`
 * - `REQUEST_TIMED_OUT`, the client's timeouts → `timeout`
 * - the client's network errors, socket errors, a failed authentication → `connection`
 * - `*_AUTHORIZATION_FAILED` and other protocol errors → `rejected`
 * - the publisher closed → `closed`; aborted (the relay stopping) → `cancelled`; anything else → `unknown`
 */

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

/** The first protocol error name (`apiId`) in a client error or its nested errors. */
function apiIdOf(error: unknown): string | undefined {
  let found: string | undefined;
  find(error, (e) => {
    if (typeof e.apiId === 'string') found = e.apiId;
    return found !== undefined;
  });
  return found;
}

const BY_API_ID: Readonly<Record<string, BrokerFailureReason>> = {
  MESSAGE_TOO_LARGE: 'too-large',
  RECORD_LIST_TOO_LARGE: 'too-large',
  INVALID_TOPIC_EXCEPTION: 'invalid',
  INVALID_RECORD: 'invalid',
  CORRUPT_MESSAGE: 'invalid',
  UNKNOWN_TOPIC_OR_PARTITION: 'unavailable',
  LEADER_NOT_AVAILABLE: 'unavailable',
  NOT_LEADER_OR_FOLLOWER: 'unavailable',
  NOT_ENOUGH_REPLICAS: 'unavailable',
  NOT_ENOUGH_REPLICAS_AFTER_APPEND: 'unavailable',
  BROKER_NOT_AVAILABLE: 'unavailable',
  COORDINATOR_NOT_AVAILABLE: 'unavailable',
  REQUEST_TIMED_OUT: 'timeout',
};

/** Classifies a client error as a `BrokerError` named `kafka: <what>: <message>`; passes cqrs-ts errors through. @internal */
export function classifyKafkaError(error: unknown, what: string): BrokerError {
  if (error instanceof BrokerError) return error;
  const message = error instanceof Error ? error.message : String(error);
  const text = `kafka: ${what}: ${message}`;
  const cause = { cause: error };
  const apiId = apiIdOf(error);
  if (apiId !== undefined) {
    return new BrokerError(BY_API_ID[apiId] ?? 'rejected', text, { ...cause, nativeCode: apiId });
  }
  const code = (error as { code?: unknown } | null)?.code;
  if (error instanceof TimeoutError || code === 'PLT_KFK_TIMEOUT') {
    return new BrokerError('timeout', text, { ...cause, nativeCode: 'PLT_KFK_TIMEOUT' });
  }
  if (code === 'PLT_KFK_NETWORK' || code === 'PLT_KFK_AUTHENTICATION') {
    return new BrokerError('connection', text, { ...cause, nativeCode: code });
  }
  const socket = connectionErrorCode(error);
  if (socket !== undefined) return new BrokerError('connection', text, { ...cause, nativeCode: socket });
  return new BrokerError('unknown', text, cause);
}
