import {
  BROKER_FAILURE_REASONS,
  BROKER_FAILURE_SCOPES,
  BrokerError,
  CqrsError,
  isCqrsError,
  isDestinationFailure,
  StorageError,
} from '@cqrs-ts/core';
import { describe, expect, it } from 'vitest';

describe('BrokerError', () => {
  it('gives every reason a scope; only too-large, invalid and topology are not retryable by default', () => {
    expect(Object.keys(BROKER_FAILURE_SCOPES).sort()).toEqual([...BROKER_FAILURE_REASONS].sort());
    const notRetryable = BROKER_FAILURE_REASONS.filter((r) => !new BrokerError(r, 'x').retryable);
    expect(notRetryable.sort()).toEqual(['invalid', 'too-large', 'topology']);
    const destination = BROKER_FAILURE_REASONS.filter((r) => BROKER_FAILURE_SCOPES[r] === 'destination');
    expect(destination.sort()).toEqual(['closed', 'connection', 'timeout', 'unavailable']);
  });

  it('is a CqrsError with code CQRS_BROKER, its cause, native code and scope', () => {
    const cause = new Error('ECONNRESET');
    const e = new BrokerError('rejected', 'nats: publish to x rejected', { cause, nativeCode: 10077 });
    expect(e).toBeInstanceOf(CqrsError);
    expect(isCqrsError(e, 'CQRS_BROKER')).toBe(true);
    expect(e).toMatchObject({ name: 'BrokerError', reason: 'rejected', scope: 'message', nativeCode: 10077 });
    expect(e.cause).toBe(cause);
    expect(new BrokerError('rejected', 'x', { retryable: false }).retryable).toBe(false);
    expect(new BrokerError('invalid', 'x', { retryable: true }).retryable).toBe(true);
  });

  it('tells a failing destination from a bad message, also for an error of another copy of core', () => {
    for (const reason of BROKER_FAILURE_REASONS) {
      expect(isDestinationFailure(new BrokerError(reason, 'x')), reason).toBe(
        BROKER_FAILURE_SCOPES[reason] === 'destination',
      );
    }
    const fromOtherCopy = Object.assign(new Error('lost'), {
      [Symbol.for('cqrs-ts.error')]: true,
      code: 'CQRS_BROKER',
      reason: 'connection',
    });
    expect(isDestinationFailure(fromOtherCopy)).toBe(true);
    expect(isDestinationFailure(new StorageError('connection', 'db down'))).toBe(false);
    expect(isDestinationFailure(new Error('connection'))).toBe(false);
    expect(isDestinationFailure({ code: 'CQRS_BROKER', reason: 'connection' })).toBe(false);
    expect(isDestinationFailure(undefined)).toBe(false);
  });
});
