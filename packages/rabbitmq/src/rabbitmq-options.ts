import type { Logger, MessageProcessorOptions } from '@cqrs-ts/core';
import type { EnvelopeCompression, OutboxMessage, PayloadSerializer } from '@cqrs-ts/core/spi';
import type { ConfirmChannel, ConsumeMessage, Options } from 'amqplib';
import type { RabbitExchangeType, RabbitTopologyOptions } from './rabbitmq-topology.ts';

/**
 * The part of an amqplib connection (`ChannelModel`) the adapters use. amqplib's `connect()` result
 * satisfies it; so does any object with the same methods.
 */
export interface AmqpConnectionLike {
  createConfirmChannel(): Promise<ConfirmChannel>;
  close(): Promise<void>;
  on(event: 'close' | 'error', listener: (error?: Error) => void): unknown;
  removeListener(event: 'close' | 'error', listener: (error?: Error) => void): unknown;
}

/**
 * Where the adapters get their AMQP connection. Give exactly one of `url` or `connection`.
 *
 * - `url`: the adapter connects itself, owns the connection (closes it on `close()`/`stop()`) and reconnects
 *   with backoff after the connection or broker goes away.
 * - `connection` as a function: called for every (re)connection; the adapter owns and closes what it returns.
 * - `connection` as an object: you own it; the adapter opens its own channel on it, re-opens the channel when
 *   only the channel closed, and never closes the connection. Once it is closed nothing can be re-opened.
 */
export interface RabbitConnectionOptions {
  /** An AMQP URL (`amqp://guest:guest@127.0.0.1:5672`) or amqplib connect options. */
  readonly url?: string | Options.Connect;
  /** An amqplib connection, or a factory of connections. */
  readonly connection?: AmqpConnectionLike | (() => Promise<AmqpConnectionLike>);
  /** Shown in the RabbitMQ management UI as the connection name (connections the adapter opens). */
  readonly connectionName?: string;
  /** Backoff between reconnection attempts. @default { initialMs: 100, maxMs: 5000 } */
  readonly reconnect?: { readonly initialMs?: number; readonly maxMs?: number };
}

/** The CloudEvents AMQP binding prefix of application properties (headers), as cqrs-ts writes it. */
export const CLOUDEVENTS_AMQP_PREFIX = 'cloudEvents:';
/**
 * The other prefix consumers accept: `cloudEvents_`, which the AMQP binding's current draft prefers (`:` is not
 * valid in some AMQP clients' property names) and which common converters write.
 */
export const CLOUDEVENTS_AMQP_UNDERSCORE_PREFIX = 'cloudEvents_';

/** Options of `createRabbitPublisher`. */
export interface RabbitPublisherOptions extends RabbitConnectionOptions {
  /** The exchange events are published to; declared durable on every new channel unless `declareExchange` is false. */
  readonly exchange: string;
  /** @default 'topic' */
  readonly exchangeType?: RabbitExchangeType;
  /** Declare the exchange (durable) on every new channel. @default true */
  readonly declareExchange?: boolean;
  /**
   * The routing key of a message. @default the event's topic (`message.topic`); with an `x-consistent-hash`
   * exchange the ordering key (or the id when the event has none)
   */
  readonly routingKey?: (message: OutboxMessage) => string;
  /**
   * Publish with `mandatory`: a message no queue receives comes back and is reported as failed (`unroutable`)
   * instead of being dropped silently. @default true
   */
  readonly mandatory?: boolean;
  /** Compresses big data (marked by the `contentencoding` attribute and the AMQP content-encoding). */
  readonly compression?: EnvelopeCompression;
  /** Unconfirmed messages allowed at once (across concurrent `publish` calls). @default 1000 */
  readonly maxInFlight?: number;
  /** Largest accepted body (after compression); bigger messages fail as `too-large`. @default 16777216 (16 MiB) */
  readonly maxMessageBytes?: number;
  /**
   * A message without a confirm after this long fails as `timeout`; the bound covers the whole `publish` call,
   * its wait for a channel included. @default 30000
   */
  readonly confirmTimeoutMs?: number;
  /** `publishEvents`: CloudEvents `source`. @default 'cqrs-ts' */
  readonly source?: string;
  /** `publishEvents`: payload serializer. @default JSON */
  readonly serializer?: PayloadSerializer;
}

/** Options of `createRabbitConsumer`. */
export interface RabbitConsumerOptions
  extends RabbitConnectionOptions,
    Omit<MessageProcessorOptions, 'name'>,
    Omit<RabbitTopologyOptions, 'queue'> {
  /** The queue to consume (declared with its retry and dead-letter queues unless `declare` is false). */
  readonly queue: string;
  /** Consumer name: the inbox's consumer key. @default the queue name */
  readonly name?: string;
  /** Declare the topology on every (re)connection. @default true */
  readonly declare?: boolean;
  /** Handlers running at once. @default 8 */
  readonly concurrency?: number;
  /** Unacknowledged messages the broker sends ahead (per consumer). @default 4 x concurrency */
  readonly prefetch?: number;
  /**
   * The key whose messages are handled one at a time, in delivery order.
   * @default the CloudEvents `partitionkey` (the event's ordering key); `null` means no ordering
   */
  readonly orderingKey?: (message: ConsumeMessage) => string | null;
  /** `stop()` waits this long for running handlers, then closes anyway (their messages are redelivered). @default 30000 */
  readonly stopTimeoutMs?: number;
  readonly logger?: Logger;
}
