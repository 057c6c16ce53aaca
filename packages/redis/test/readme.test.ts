import { expect, it } from 'vitest';
import { inOwnPostgresDatabase, postgresReachable, runExample } from '../../core/test/support/services.ts';
import { deleteKeys, keyPrefix, newRedis, REDIS_URL, redisAvailable } from './support.ts';

const pgAvailable = await postgresReachable();

const available = await redisAvailable();

it.skipIf(!available || !pgAvailable)(
  "the README's example runs: outbox on Postgres, relay, stream, consumer group with the inbox",
  async () => {
    const prefix = keyPrefix('readme');
    try {
      const out = await inOwnPostgresDatabase('redis', (url) =>
        runExample('packages/redis', 'test/readme/quick-start.ts', {
          DATABASE_URL: url,
          REDIS_PREFIX: prefix,
          REDIS_URL,
        }),
      );
      expect(out.split('\n')).toEqual([
        'bill o-1, correlation checkout-1',
        'bill o-2, correlation checkout-2',
        '',
      ]);
    } finally {
      const redis = newRedis();
      await deleteKeys(redis, prefix);
      redis.disconnect();
    }
  },
);

it.skipIf(!available)(
  "the README's query cache example runs: a hit from Redis, evicted by an event",
  async () => {
    const prefix = keyPrefix('readme-cache');
    try {
      const out = await runExample('packages/redis', 'test/readme/query-cache.ts', {
        REDIS_PREFIX: prefix,
        REDIS_URL,
      });
      expect(out.split('\n')).toEqual(['placed 1', 'placed 1', 'shipped 2', '']);
    } finally {
      const redis = newRedis();
      await deleteKeys(redis, prefix);
      redis.disconnect();
    }
  },
);
