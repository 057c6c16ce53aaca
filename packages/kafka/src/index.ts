/**
 * @cqrs-ts/kafka: Kafka publisher (outbox relay and direct) and consumer-group consumer for cqrs-ts, over
 * `@platformatic/kafka` (pure JavaScript). CloudEvents 1.0 Kafka binding, binary mode (`ce_*` headers).
 * @packageDocumentation
 */
export type { EnsureKafkaTopicsOptions, KafkaTopicSpec } from './kafka-admin.ts';
export { ensureKafkaTopics } from './kafka-admin.ts';
export type { KafkaConsumer, KafkaConsumerStats } from './kafka-consumer.ts';
export { createKafkaConsumer, laneOf } from './kafka-consumer.ts';
export { hasKafkaErrorCode, KafkaBrokerError } from './kafka-errors.ts';
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
export type { CommitQueue, OffsetCommit, OffsetTracker } from './offset-tracker.ts';
export { createCommitQueue, createOffsetTracker } from './offset-tracker.ts';
