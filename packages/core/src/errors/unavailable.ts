import { isDestinationFailure } from './broker-error.ts';
import { isCqrsError } from './cqrs-error.ts';

/** Socket-level error codes of Node and its drivers that mean "the other side cannot be reached right now". */
const UNREACHABLE_CODES: ReadonlySet<string> = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'EHOSTDOWN',
  'ENETUNREACH',
  'ENETDOWN',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EPIPE',
]);

/**
 * True when an error says that a destination or dependency cannot be reached right now (connection refused or
 * lost, timed out, broker or database unavailable) rather than that one message is at fault. The outbox relay
 * pauses publishing on such errors without counting them against any message, and the message processor pauses
 * a consumer on them instead of dead-lettering the message.
 *
 * Looks through `cause` chains (and `AggregateError.errors`) for: a `BrokerError` of scope `destination`
 * ({@link isDestinationFailure}: connection, timeout, unavailable, closed), a `StorageError` whose reason is
 * `connection` or `timeout`, an open circuit (`CQRS_CIRCUIT_OPEN`), or a Node socket error code
 * (`ECONNREFUSED`, `ECONNRESET`, `ETIMEDOUT`, `EHOSTUNREACH`, ...).
 */
export function isUnavailableError(error: unknown): boolean {
  return walk(error, 0);
}

function walk(error: unknown, depth: number): boolean {
  if (error === null || typeof error !== 'object' || depth > 8) return false;
  const e = error as { reason?: unknown; code?: unknown; cause?: unknown; errors?: unknown };
  if (isCqrsError(error)) {
    if (error.code === 'CQRS_CIRCUIT_OPEN') return true;
    if (error.code === 'CQRS_STORAGE') return e.reason === 'connection' || e.reason === 'timeout';
    if (error.code === 'CQRS_BROKER') {
      // the broker package's classification stands, unless it could not classify
      if (isDestinationFailure(error)) return true;
      if (e.reason !== 'unknown') return false;
    }
  } else if (typeof e.code === 'string' && UNREACHABLE_CODES.has(e.code)) return true;
  if (Array.isArray(e.errors)) {
    for (const inner of e.errors) if (walk(inner, depth + 1)) return true;
  }
  return e.cause !== undefined && e.cause !== error && walk(e.cause, depth + 1);
}
