import { createMediator, defineQuery, handle, queryCache } from '@cqrs-ts/core';
import { createRedisQueryCacheStore } from '@cqrs-ts/redis';
import { createTcpProxy, describeQueryCacheStoreContract } from '@cqrs-ts/testing/contracts';
import { Redis } from 'ioredis';
import { afterAll, expect, it } from 'vitest';
import { deleteKeys, keyPrefix, newRedis, REDIS_URL, redisAvailable } from './support.ts';

const available = await redisAvailable();
const redis = newRedis();
const prefix = keyPrefix('qc');
afterAll(async () => {
  await deleteKeys(redis, prefix).catch(() => {});
  redis.disconnect();
});

let n = 0;
describeQueryCacheStoreContract('redis', async () => {
  if (!available) return undefined;
  const store = createRedisQueryCacheStore({ redis, tagPrefix: `${prefix}tag:` });
  return { store: () => store, prefix: () => `${prefix}${n++}:`, async close() {} };
});

const GetOrder = defineQuery('qc.redis-order').withPayload<{ id: string }>().returns<{ id: string }>();

it.skipIf(!available)('a Redis outage degrades to running the handler, reported, never thrown', async () => {
  const url = new URL(REDIS_URL);
  const proxy = await createTcpProxy({ host: url.hostname, port: Number(url.port || 6379) });
  const client = new Redis({
    host: '127.0.0.1',
    port: proxy.port,
    maxRetriesPerRequest: 1,
    retryStrategy: () => 50,
  });
  client.on('error', () => {});
  const errors: unknown[] = [];
  let calls = 0;
  try {
    const cache = queryCache({
      store: createRedisQueryCacheStore({ redis: client as never, tagPrefix: `${prefix}out:` }),
      queries: [{ query: GetOrder, ttlMs: 60_000 }],
      keyPrefix: `${prefix}out:`,
      timeoutMs: 100,
      onError: (e) => errors.push(e),
    });
    const mediator = createMediator({
      behaviors: [cache],
      handlers: [
        handle(GetOrder, (q) => {
          calls++;
          return { id: q.payload.id };
        }),
      ],
    });
    await mediator.query(GetOrder.create({ id: '1' }));
    await mediator.query(GetOrder.create({ id: '1' }));
    expect([calls, errors.length]).toEqual([1, 0]);
    await proxy.close();
    expect(await mediator.query(GetOrder.create({ id: '1' }))).toEqual({ id: '1' });
    expect(calls).toBe(2);
    expect(errors.length).toBeGreaterThan(0);
  } finally {
    client.disconnect();
    await proxy.close().catch(() => {});
  }
});
