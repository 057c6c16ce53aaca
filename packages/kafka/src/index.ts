/**
 * `@cqrs-ts/kafka`: Kafka publisher (outbox relay and direct) and consumer-group consumer for cqrs-ts, over
 * `@platformatic/kafka` (pure JavaScript). CloudEvents 1.0 Kafka binding, binary mode (`ce_*` headers).
 * Failures are `BrokerError`s of `@cqrs-ts/core` (see `kafka-errors.ts` for the classification).
 * @module
 */
export type { EnsureKafkaTopicsOptions, KafkaTopicSpec } from './kafka-admin.ts';
export { ensureKafkaTopics } from './kafka-admin.ts';
export type { KafkaBroadcastConsumerOptions } from './kafka-broadcast-consumer.ts';
export { createKafkaBroadcastConsumer } from './kafka-broadcast-consumer.ts';
export type { KafkaConsumer } from './kafka-consumer.ts';
export { createKafkaConsumer, laneOf } from './kafka-consumer.ts';
export { hasKafkaErrorCode } from './kafka-errors.ts';
export type { CommitQueue, OffsetCommit, OffsetTracker } from './kafka-offset-tracker.ts';
export { createCommitQueue, createOffsetTracker } from './kafka-offset-tracker.ts';
export type {
  ConsumedKafkaMessage,
  KafkaAcks,
  KafkaCompression,
  KafkaConnectionOptions,
  KafkaConsumerErrorContext,
  KafkaConsumerLike,
  KafkaConsumerOptions,
  KafkaMessageStreamLike,
  KafkaPartitioner,
  KafkaProducerLike,
  KafkaPublisherOptions,
  KafkaRecordToProduce,
} from './kafka-options.ts';
export type { KafkaPublisher } from './kafka-publisher.ts';
export { createKafkaPublisher, parseKafkaBrokers } from './kafka-publisher.ts';
export type { ConsumedKafkaRecord } from './kafka-wire.ts';
export {
  asBuffer,
  buildDeadLetterRecord,
  buildKafkaRecord,
  DEAD_LETTER_ATTRIBUTES,
  defaultKafkaPartitioner,
  fromKafkaHeaders,
  KAFKA_HEADER_PREFIX,
  toKafkaHeaders,
} from './kafka-wire.ts';
