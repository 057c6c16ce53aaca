/**
 * @cqrs-ts/redis: Redis Streams publisher (for the outbox relay and direct use) and consumer-group consumer.
 * @module
 */

export type {
  RedisStreamsConsumer,
  RedisStreamsConsumerOptions,
  RedisStreamsConsumerStats,
} from './redis-consumer.ts';
export { createRedisStreamsConsumer } from './redis-consumer.ts';
export type {
  RedisArgument,
  RedisClientLike,
  RedisConnectionOptions,
  RedisPipelineLike,
} from './redis-options.ts';
export { RedisStreamsError } from './redis-options.ts';
export type { RedisStreamsPublisher, RedisStreamsPublisherOptions } from './redis-publisher.ts';
export { createRedisStreamsPublisher } from './redis-publisher.ts';
export { DATA_FIELD, DEFAULT_FIELD_PREFIX } from './redis-wire.ts';
