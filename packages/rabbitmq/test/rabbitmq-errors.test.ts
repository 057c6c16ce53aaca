import { BrokerError, isDestinationFailure } from '@cqrs-ts/core';
import { describe, expect, it } from 'vitest';
import { rabbitError, replyCodeOf, topologyError } from '../src/rabbitmq-errors.ts';

describe('rabbitmq error classification', () => {
  it('names the package and the reason, and keeps the AMQP reply code', () => {
    const e = rabbitError('unroutable', 'no queue is bound', { replyCode: 312 });
    expect(e).toBeInstanceOf(BrokerError);
    expect(e).toMatchObject({ reason: 'unroutable', scope: 'message', retryable: true, nativeCode: 312 });
    expect(e.message).toBe('rabbitmq unroutable: no queue is bound');
    expect(rabbitError('too-large', 'x').retryable).toBe(false);
    expect(isDestinationFailure(rabbitError('connection', 'channel closed'))).toBe(true);
  });

  it('a declaration refused with 406 PRECONDITION_FAILED is a topology conflict; anything else the connection', () => {
    const conflict = Object.assign(new Error('PRECONDITION_FAILED - inequivalent arg'), { code: 406 });
    expect(topologyError(conflict, 'q', 'x')).toMatchObject({
      reason: 'topology',
      retryable: false,
      nativeCode: 406,
      scope: 'setup',
    });
    const lost = Object.assign(new Error('Connection closed'), { code: 320 });
    expect(topologyError(lost, 'q', 'x')).toMatchObject({ reason: 'connection', nativeCode: 320 });
    expect(topologyError(new Error('socket hang up'), 'q', 'x')).toMatchObject({
      reason: 'connection',
      nativeCode: undefined,
    });
    expect(replyCodeOf({ code: 'ECONNRESET' })).toBeUndefined();
  });
});
