import {
  createCacheInvalidation,
  createMediator,
  defineEvent,
  defineQuery,
  handle,
  type InferMessage,
  on,
  queryCache,
} from '@cqrs-ts/core';
import { createRedisQueryCacheStore } from '@cqrs-ts/redis';
import { Redis } from 'ioredis';

const GetOrder = defineQuery('orders.get-order').withPayload<{ id: string }>().returns<{ status: string }>();
const OrderShipped = defineEvent('orders.order-shipped').withPayload<{ id: string }>();

const prefix = process.env.REDIS_PREFIX ?? 'app:';
const redis = new Redis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379', { enableOfflineQueue: false });
await new Promise((resolve) => redis.once('ready', resolve));

const orders = new Map([['o-1', 'placed']]);
let reads = 0;
const cache = queryCache({
  store: createRedisQueryCacheStore({ redis, tagPrefix: `${prefix}tag:` }),
  keyPrefix: `${prefix}q:`,
  queries: [{ query: GetOrder, ttlMs: 60_000, tags: (q) => [`order:${q.payload.id}`] }],
});
const invalidation = createCacheInvalidation({
  cache,
  rules: [{ event: OrderShipped, tags: (e: InferMessage<typeof OrderShipped>) => [`order:${e.payload.id}`] }],
});
const mediator = createMediator({
  behaviors: [cache],
  handlers: [
    handle(GetOrder, ({ payload }) => {
      reads++;
      return { status: orders.get(payload.id) ?? 'unknown' };
    }),
    on(OrderShipped, async (e) => {
      orders.set(e.payload.id, 'shipped');
      await invalidation.onApplied([e]); // after the change the query reads, never before
    }),
  ],
});

console.log((await mediator.query(GetOrder.create({ id: 'o-1' }))).status, reads); // placed 1 (from the handler)
console.log((await mediator.query(GetOrder.create({ id: 'o-1' }))).status, reads); // placed 1 (from Redis)
await mediator.publish(OrderShipped.create({ id: 'o-1' }));
console.log((await mediator.query(GetOrder.create({ id: 'o-1' }))).status, reads); // shipped 2
redis.disconnect();
