import { AssertionError, deepStrictEqual } from 'node:assert';
import type { AnyEvent } from '@cqrs-ts/core';
import { isCqrsError } from '@cqrs-ts/core';

/** An event as specifications compare it: its type and payload (ids and times differ from run to run). */
export interface EventShape {
  readonly type: string;
  readonly payload: unknown;
}

/** What an expected error is matched against: a class, a `CQRS_…` code, a message pattern or a predicate. */
export type ErrorExpectation =
  | (abstract new (
      ...args: never[]
    ) => Error)
  | `CQRS_${string}`
  | RegExp
  | ((error: unknown) => boolean);

/** Plain data of an event for comparison: `{ type, payload }`. */
export function shapeOf(event: AnyEvent | EventShape): EventShape {
  return { type: event.type, payload: toPlain(event.payload) };
}

/** A deep copy without prototypes or freezing, so a diff compares data only. */
function toPlain(value: unknown): unknown {
  if (value === null || typeof value !== 'object') return value;
  if (Array.isArray(value)) return value.map(toPlain);
  if (value instanceof Date || value instanceof Uint8Array) return value;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) if (v !== undefined) out[k] = toPlain(v);
  return out;
}

/** Fails with a readable difference (and `actual`/`expected` for test runners that diff them) unless equal. */
export function expectEqual(actual: unknown, expected: unknown, what: string): void {
  try {
    deepStrictEqual(toPlain(actual), toPlain(expected));
  } catch (error) {
    if (!(error instanceof AssertionError)) throw error;
    throw new AssertionError({
      message: `${what}\n${error.message.split('\n').slice(1).join('\n')}`,
      actual: error.actual,
      expected: error.expected,
      operator: 'deepStrictEqual',
    });
  }
}

/** Fails unless `events` are `expected`, in order (types and payloads). */
export function expectEvents(
  actual: readonly (AnyEvent | EventShape)[],
  expected: readonly (AnyEvent | EventShape)[],
  what: string,
): void {
  expectEqual(actual.map(shapeOf), expected.map(shapeOf), what);
}

const describe = (error: unknown): string =>
  error instanceof Error
    ? `${error.name}${isCqrsError(error) ? ` (${error.code})` : ''}: ${error.message}`
    : String(error);

/** Fails unless `error` matches the expectation. */
export function expectError(error: unknown, expected: ErrorExpectation | undefined, what: string): void {
  if (expected === undefined) return;
  let ok: boolean;
  let wanted: string;
  if (typeof expected === 'string') {
    ok = isCqrsError(error, expected as never);
    wanted = `an error with code ${expected}`;
  } else if (expected instanceof RegExp) {
    ok = error instanceof Error && expected.test(error.message);
    wanted = `an error whose message matches ${expected}`;
  } else if (typeof expected === 'function' && expected.prototype instanceof Error) {
    ok = error instanceof (expected as abstract new (...args: never[]) => Error);
    wanted = `an instance of ${expected.name}`;
  } else {
    ok = (expected as (e: unknown) => boolean)(error);
    wanted = 'an error the predicate accepts';
  }
  if (!ok) {
    throw new AssertionError({
      message: `${what}: expected ${wanted}, got ${describe(error)}`,
      actual: describe(error),
      expected: wanted,
      operator: 'throws',
    });
  }
}

/** Fails because something that should have thrown did not. */
export function didNotThrow(what: string, outcome: string): never {
  throw new AssertionError({ message: `${what}: expected it to throw, but ${outcome}`, operator: 'throws' });
}
