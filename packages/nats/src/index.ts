/**
 * `@cqrs-ts/nats`: NATS JetStream publisher (outbox relay and direct use), stream helper and durable pull
 * consumer, with the CloudEvents NATS binding (`ce-` headers) as the wire envelope. Failures are `BrokerError`s
 * of `@cqrs-ts/core` (see `nats-errors.ts` for the classification).
 * @module
 */
export type { NatsBroadcastConsumerOptions } from './nats-broadcast-consumer.ts';
export { createNatsBroadcastConsumer } from './nats-broadcast-consumer.ts';
export type { NatsConsumer } from './nats-consumer.ts';
export { attributesFromHeaders, createNatsConsumer } from './nats-consumer.ts';
export type {
  NatsConnectionSource,
  NatsConsumerOptions,
  NatsDeadLetterOptions,
  NatsPublisherOptions,
} from './nats-options.ts';
export { isValidSubject, isValidSubjectFilter } from './nats-options.ts';
export type { NatsPublisher, NatsPublisherHealth } from './nats-publisher.ts';
export { createNatsPublisher, NATS_CE_PREFIX } from './nats-publisher.ts';
export type { EnsuredNatsStream, EnsureNatsStreamOptions } from './nats-stream.ts';
export { ensureNatsStream } from './nats-stream.ts';
