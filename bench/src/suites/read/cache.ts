/**
 * Query cache cases of the `read` suite: a query dispatched with no cache against a hit of the in-memory cache
 * (same mediator shape), and a raw Redis GET against a hit of the Redis cache (same client). The query cases create
 * their message in each operation, as applications do.
 */
import {
  createInMemoryQueryCacheStore,
  createMediator,
  defineQuery,
  handle,
  queryCache,
} from '@cqrs-ts/core';
import { createRedisQueryCacheStore } from '@cqrs-ts/redis';
import { Redis } from 'ioredis';
import type { AsyncOpCase } from '../../lib/types.ts';
import { suffix } from '../outbox/common.ts';

const GetOrder = defineQuery('bench.get-order')
  .withPayload<{ id: string }>()
  .returns<{ id: string; total: number }>();
const row = { id: 'o-42', total: 42 };

export async function setup(variant: string): Promise<AsyncOpCase> {
  const handler = handle(GetOrder, () => row);
  if (variant === 'bare') {
    const mediator = createMediator({ handlers: [handler] });
    return { op: () => mediator.query(GetOrder.create({ id: 'o-42' })) };
  }
  if (variant === 'memory-hit') {
    const cache = queryCache({
      store: createInMemoryQueryCacheStore(),
      queries: [{ query: GetOrder, ttlMs: 3_600_000, tags: (q) => [`order:${q.payload.id}`] }],
    });
    const mediator = createMediator({ behaviors: [cache], handlers: [handler] });
    return { op: () => mediator.query(GetOrder.create({ id: 'o-42' })) };
  }
  const redis = new Redis(process.env.CQRS_REDIS_URL ?? 'redis://127.0.0.1:6379');
  redis.on('error', () => {});
  const prefix = `bench:qc:${suffix}:`;
  const close = async () => {
    const keys = await redis.keys(`${prefix}*`);
    if (keys.length > 0) await redis.del(...keys);
    redis.disconnect();
  };
  if (variant === 'redis-raw') {
    await redis.set(`${prefix}raw`, JSON.stringify({ v: row }), 'PX', 3_600_000);
    return { op: async () => JSON.parse((await redis.get(`${prefix}raw`))!), close };
  }
  const cache = queryCache({
    store: createRedisQueryCacheStore({ redis: redis as never, tagPrefix: `${prefix}tag:` }),
    queries: [{ query: GetOrder, ttlMs: 3_600_000, tags: (q) => [`order:${q.payload.id}`] }],
    keyPrefix: prefix,
  });
  const mediator = createMediator({ behaviors: [cache], handlers: [handler] });
  let calls = 0;
  const counted = createMediator({
    behaviors: [cache],
    handlers: [
      handle(GetOrder, () => {
        calls++;
        return row;
      }),
    ],
  });
  await counted.query(GetOrder.create({ id: 'o-42' }));
  await counted.query(GetOrder.create({ id: 'o-42' }));
  if (calls !== 1) throw new Error('the Redis cache did not hit');
  return { op: () => mediator.query(GetOrder.create({ id: 'o-42' })), close };
}
