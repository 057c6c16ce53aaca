/**
 * `@cqrs-ts/redis`: Redis Streams publisher (for the outbox relay and direct use) and consumer-group consumer.
 * Failures are `BrokerError`s of `@cqrs-ts/core` (see `redis-errors.ts` for the classification).
 * @module
 */
export type { RedisBroadcastConsumerOptions } from './redis-broadcast-consumer.ts';
export { createRedisBroadcastConsumer } from './redis-broadcast-consumer.ts';
export type { RedisStreamsConsumer } from './redis-consumer.ts';
export { createRedisStreamsConsumer } from './redis-consumer.ts';
export type {
  RedisArgument,
  RedisClientLike,
  RedisConnectionOptions,
  RedisPipelineLike,
  RedisStreamsConsumerOptions,
  RedisStreamsPublisherOptions,
} from './redis-options.ts';
export type { RedisStreamsPublisher } from './redis-publisher.ts';
export { createRedisStreamsPublisher } from './redis-publisher.ts';
export type { RedisQueryCacheStoreOptions } from './redis-query-cache-store.ts';
export { createRedisQueryCacheStore } from './redis-query-cache-store.ts';
export { DATA_FIELD, DEFAULT_FIELD_PREFIX } from './redis-wire.ts';
