import { BrokerError, isDestinationFailure } from '@cqrs-ts/core';
import { describe, expect, it } from 'vitest';
import { classifyRedisError, isNoGroup } from '../src/redis-errors.ts';

const socketError = (code: string) => Object.assign(new Error(`connect ${code} 127.0.0.1:6379`), { code });

describe('redis error classification', () => {
  it('a lost or refused connection is a destination failure', () => {
    for (const error of [
      socketError('ECONNREFUSED'),
      socketError('ECONNRESET'),
      new Error('Connection is closed.'),
      new Error("Stream isn't writeable and enableOfflineQueue options is false"),
      new Error('Reached the max retries per request limit (which is 20). Refer to "maxRetriesPerRequest"'),
    ]) {
      const e = classifyRedisError(error, 'XADD s');
      expect(e.reason, error.message).toBe('connection');
      expect(isDestinationFailure(e)).toBe(true);
      expect(e.cause).toBe(error);
    }
    expect(classifyRedisError(socketError('ECONNREFUSED'), 'x').nativeCode).toBe('ECONNREFUSED');
  });

  it('reads the error reply: unavailable, wrong type, other replies; anything else is unknown', () => {
    expect(
      classifyRedisError("OOM command not allowed when used memory > 'maxmemory'.", 'XADD s'),
    ).toMatchObject({
      reason: 'unavailable',
      nativeCode: 'OOM',
      scope: 'destination',
    });
    expect(classifyRedisError("READONLY You can't write against a read only replica.", 'x').reason).toBe(
      'unavailable',
    );
    expect(
      classifyRedisError('WRONGTYPE Operation against a key holding the wrong kind of value', 'XADD s'),
    ).toMatchObject({ reason: 'topology', retryable: false });
    expect(classifyRedisError('ERR something odd', 'x')).toMatchObject({
      reason: 'rejected',
      nativeCode: 'ERR',
    });
    expect(classifyRedisError(new Error('boom'), 'publish')).toMatchObject({
      reason: 'unknown',
      message: 'redis: publish: boom',
    });
    const already = new BrokerError('timeout', 'redis: no reply');
    expect(classifyRedisError(already, 'x')).toBe(already);
    expect(isNoGroup(new Error('NOGROUP No such key'))).toBe(true);
  });
});
