import { CqrsError, isCqrsError } from './cqrs-error.ts';

/**
 * What a writer expects of a stream or a versioned row before it writes: a version (the number of events of
 * the stream, or the row's version; `0` means "does not exist yet"), `'no-stream'` (must not exist),
 * `'stream-exists'` (must exist, any version) or `'any'` (no check).
 */
export type ExpectedVersion = number | 'no-stream' | 'stream-exists' | 'any';

/**
 * An optimistic concurrency check failed: another writer changed the stream or row since it was read (or it
 * exists where none was expected, or is missing). Nothing was written. Retry by re-running the handler, which
 * loads the new version: `retry({ retryOn: isConcurrencyError })`.
 */
export class ConcurrencyError extends CqrsError {
  /** The stream id or row id. */
  readonly subject: string;
  readonly expected: ExpectedVersion;
  /** The version found, `undefined` when the stream or row does not exist. */
  readonly actual: number | undefined;

  constructor(subject: string, expected: ExpectedVersion, actual: number | undefined) {
    const found = actual === undefined ? 'it does not exist' : `it is at version ${actual}`;
    super(
      'CQRS_CONCURRENCY',
      `${subject.slice(0, 200)}: expected ${typeof expected === 'number' ? `version ${expected}` : expected}, but ${found}`,
    );
    this.name = 'ConcurrencyError';
    this.subject = subject;
    this.expected = expected;
    this.actual = actual;
  }

  override toJSON(): {
    name: string;
    code: 'CQRS_CONCURRENCY';
    message: string;
    subject: string;
    expected: ExpectedVersion;
    actual: number | null;
  } {
    return {
      name: this.name,
      code: 'CQRS_CONCURRENCY',
      message: this.message,
      subject: this.subject,
      expected: this.expected,
      actual: this.actual ?? null,
    };
  }
}

/**
 * True for a lost optimistic-concurrency race (code `CQRS_CONCURRENCY`), also from another copy of the package.
 * Pass it to the retry behavior to re-run a handler that lost: `retry({ maxAttempts: 3, retryOn: isConcurrencyError })`.
 */
export function isConcurrencyError(error: unknown): error is ConcurrencyError {
  return isCqrsError(error, 'CQRS_CONCURRENCY');
}
