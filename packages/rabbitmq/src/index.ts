/**
 * `@cqrs-ts/rabbitmq`: RabbitMQ publisher (durable exchange, persistent messages, publisher confirms) for the
 * outbox relay, and a consumer with retry queues, dead-lettering, per-key ordering and reconnection.
 * Messages use the CloudEvents AMQP binding (`cloudEvents:` headers). Failures are `BrokerError`s of
 * `@cqrs-ts/core` (see `rabbitmq-errors.ts` for the classification).
 * @module
 */
export type { RabbitBroadcastConsumerOptions } from './rabbitmq-broadcast-consumer.ts';
export { createRabbitBroadcastConsumer } from './rabbitmq-broadcast-consumer.ts';
export type { RabbitConsumer } from './rabbitmq-consumer.ts';
export { createRabbitConsumer, RABBIT_ATTEMPTS_HEADER } from './rabbitmq-consumer.ts';
export type {
  AmqpConnectionLike,
  RabbitConnectionOptions,
  RabbitConsumerOptions,
  RabbitPublisherOptions,
} from './rabbitmq-options.ts';
export { CLOUDEVENTS_AMQP_PREFIX, CLOUDEVENTS_AMQP_UNDERSCORE_PREFIX } from './rabbitmq-options.ts';
export type { RabbitPublisher } from './rabbitmq-publisher.ts';
export { createRabbitPublisher } from './rabbitmq-publisher.ts';
export type { RabbitExchangeType, RabbitTopology, RabbitTopologyOptions } from './rabbitmq-topology.ts';
export {
  DEFAULT_RETRY_DELAYS_MS,
  ensureRabbitTopology,
  resolveRabbitTopology,
} from './rabbitmq-topology.ts';
