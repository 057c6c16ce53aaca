/**
 * @cqrs-ts/nats: NATS JetStream publisher (outbox relay and direct use), stream helper and durable pull
 * consumer, with the CloudEvents NATS binding (`ce-` headers) as the wire envelope.
 * @packageDocumentation
 */
export type {
  NatsConsumer,
  NatsConsumerHealth,
  NatsConsumerOptions,
  NatsDeadLetterOptions,
} from './nats-consumer.ts';
export { attributesFromHeaders, createNatsConsumer } from './nats-consumer.ts';
export type { NatsFailureReason } from './nats-errors.ts';
export { NATS_FAILURE_REASONS, NatsBrokerError } from './nats-errors.ts';
export type { NatsConnectionSource } from './nats-options.ts';
export { isValidSubject, isValidSubjectFilter } from './nats-options.ts';
export type { NatsPublisher, NatsPublisherHealth, NatsPublisherOptions } from './nats-publisher.ts';
export { createNatsPublisher, NATS_CE_PREFIX } from './nats-publisher.ts';
export type { EnsuredNatsStream, EnsureNatsStreamOptions } from './nats-stream.ts';
export { ensureNatsStream } from './nats-stream.ts';
