/**
 * @cqrs-ts/redis: Redis Streams publisher (for the outbox relay and direct use) and consumer-group consumer.
 * @module
 */
export type {
  RedisArgument,
  RedisClientLike,
  RedisConnectionOptions,
  RedisPipelineLike,
} from './streams-client.ts';
export { RedisStreamsError } from './streams-client.ts';
export type {
  RedisStreamsConsumer,
  RedisStreamsConsumerOptions,
  RedisStreamsConsumerStats,
} from './streams-consumer.ts';
export { createRedisStreamsConsumer } from './streams-consumer.ts';
export { DATA_FIELD, DEFAULT_FIELD_PREFIX } from './streams-fields.ts';
export type { RedisStreamsPublisher, RedisStreamsPublisherOptions } from './streams-publisher.ts';
export { createRedisStreamsPublisher } from './streams-publisher.ts';
