import { BrokerError } from '@cqrs-ts/core';
import { connectionErrorCode } from '@cqrs-ts/core/spi';

/**
 * How this package classifies Redis failures into `BrokerError` reasons:
 *
 * - a lost or refused connection (`ECONNREFUSED`, `ECONNRESET`, `EPIPE`, `ETIMEDOUT`, ioredis' closed or not
 *   writeable connection, retries per request exhausted) → `connection`
 * - Redis up but not taking writes (`OOM`, `READONLY`, `LOADING`, `BUSY`, `MASTERDOWN`, `CLUSTERDOWN`, `NOAUTH`,
 *   `WRONGPASS`, `NOPERM`) → `unavailable`
 * - the stream key holds another type (`WRONGTYPE`) → `topology`
 * - a message that cannot be written (no id, bad attribute names or values, no bytes) → `invalid`
 * - no reply within `timeoutMs` → `timeout`; the publisher closed → `closed`; aborted → `cancelled`
 * - not appended because an earlier message of the call, or of its key, failed → `skipped`
 * - any other error reply → `rejected`; anything else → `unknown`
 *
 * `nativeCode` is the first word of a Redis error reply (`OOM`, `WRONGTYPE`, ...) or a socket error code.
 */

const CONNECTION_TEXT =
  /Connection is closed|Stream isn't writeable|max retries per request|Connection in subscriber mode|socket closed/i;
const UNAVAILABLE = new Set([
  'OOM',
  'READONLY',
  'LOADING',
  'BUSY',
  'MASTERDOWN',
  'CLUSTERDOWN',
  'NOAUTH',
  'WRONGPASS',
  'NOPERM',
]);
const ERROR_REPLY = /^([A-Z][A-Z_]+) /;

/** The message of an error, or the value as text. @internal */
export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** True for a `NOGROUP` reply (the stream or its group is gone, e.g. Redis restarted without data). @internal */
export function isNoGroup(error: unknown): boolean {
  return errorMessage(error).startsWith('NOGROUP');
}

/**
 * Classifies an error thrown by an ioredis command or a Redis error reply (`!message` of the append script) as
 * a `BrokerError` named `redis: <what>: <message>`. @internal
 */
export function classifyRedisError(error: unknown, what: string): BrokerError {
  if (error instanceof BrokerError) return error;
  const message = errorMessage(error);
  const socketCode = connectionErrorCode(error);
  const text = `redis: ${what}: ${message}`;
  const cause = error instanceof Error ? { cause: error } : {};
  if (socketCode !== undefined) {
    return new BrokerError('connection', text, { ...cause, nativeCode: socketCode });
  }
  if (CONNECTION_TEXT.test(message)) return new BrokerError('connection', text, cause);
  const reply = ERROR_REPLY.exec(message)?.[1];
  if (reply !== undefined) {
    if (UNAVAILABLE.has(reply)) return new BrokerError('unavailable', text, { ...cause, nativeCode: reply });
    if (reply === 'WRONGTYPE') return new BrokerError('topology', text, { ...cause, nativeCode: reply });
    return new BrokerError('rejected', text, { ...cause, nativeCode: reply });
  }
  return new BrokerError('unknown', text, cause);
}
