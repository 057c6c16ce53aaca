import { BrokerError, isDestinationFailure } from '@cqrs-ts/core';
import { MultipleErrors, NetworkError, ProtocolError, TimeoutError } from '@platformatic/kafka';
import { describe, expect, it } from 'vitest';
import { classifyKafkaError, hasKafkaErrorCode } from '../src/kafka-errors.ts';

describe('kafka error classification', () => {
  it('reads the protocol error, also nested in a multiple-errors wrapper', () => {
    expect(classifyKafkaError(new ProtocolError('MESSAGE_TOO_LARGE'), 'produce')).toMatchObject({
      reason: 'too-large',
      retryable: false,
      nativeCode: 'MESSAGE_TOO_LARGE',
    });
    const wrapped = new MultipleErrors('produce failed', [new ProtocolError('NOT_LEADER_OR_FOLLOWER')]);
    const unavailable = classifyKafkaError(wrapped, 'produce');
    expect(unavailable).toMatchObject({ reason: 'unavailable', nativeCode: 'NOT_LEADER_OR_FOLLOWER' });
    expect(isDestinationFailure(unavailable)).toBe(true);
    expect(hasKafkaErrorCode(wrapped, 'NOT_LEADER_OR_FOLLOWER')).toBe(true);
    expect(classifyKafkaError(new ProtocolError('INVALID_TOPIC_EXCEPTION'), 'x').reason).toBe('invalid');
    expect(classifyKafkaError(new ProtocolError('REQUEST_TIMED_OUT'), 'x').reason).toBe('timeout');
    expect(classifyKafkaError(new ProtocolError('TOPIC_AUTHORIZATION_FAILED'), 'x')).toMatchObject({
      reason: 'rejected',
      scope: 'message',
    });
  });

  it('network errors and timeouts of the client, socket errors, anything else', () => {
    expect(classifyKafkaError(new NetworkError('Connection closed'), 'produce').reason).toBe('connection');
    expect(classifyKafkaError(new TimeoutError('Request timed out'), 'produce').reason).toBe('timeout');
    const refused = Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' });
    expect(classifyKafkaError(refused, 'x')).toMatchObject({
      reason: 'connection',
      nativeCode: 'ECONNREFUSED',
    });
    const other = classifyKafkaError(new Error('boom'), 'produce');
    expect(other).toMatchObject({ reason: 'unknown', message: 'kafka: produce: boom' });
    const already = new BrokerError('closed', 'kafka: publisher is closed');
    expect(classifyKafkaError(already, 'x')).toBe(already);
  });
});
