import { ConfigurationError } from '@cqrs-ts/core';
import {
  type BroadcastConsumer,
  type BroadcastConsumerOptions,
  type BroadcastSubscription,
  createBroadcastConsumer,
} from '@cqrs-ts/core/spi';
import type { ConfirmChannel, ConsumeMessage } from 'amqplib';
import { checkConnectionOptions, createChannelSource } from './rabbitmq-connection.ts';
import { amqpAttributes } from './rabbitmq-consumer.ts';
import type { RabbitConnectionOptions } from './rabbitmq-options.ts';
import type { RabbitExchangeType } from './rabbitmq-topology.ts';

/** Options of {@link createRabbitBroadcastConsumer}. */
export interface RabbitBroadcastConsumerOptions extends RabbitConnectionOptions, BroadcastConsumerOptions {
  /** The exchange the events are published to. */
  readonly exchange: string;
  /** @default 'topic' */
  readonly exchangeType?: Exclude<RabbitExchangeType, 'x-consistent-hash'>;
  /** Declare the exchange (durable) before binding. @default true */
  readonly declareExchange?: boolean;
  /** Binding keys of each instance's queue (topic patterns such as `orders.#`). @default ['#'] */
  readonly bindings?: readonly string[];
}

const EXCHANGE_TYPES = new Set(['topic', 'direct', 'fanout', 'headers']);

/**
 * A broadcast (non-competing) consumer of a RabbitMQ exchange: each instance declares its own exclusive,
 * auto-delete, non-durable queue named after the instance, binds it and consumes without acknowledgements, so
 * every instance gets every message routed after `start()` (RabbitMQ has no earlier start position). `stop()`
 * deletes the queue; the broker also deletes it when the connection goes away. After a lost connection the
 * queue is declared again: what was routed meanwhile is not seen. See `BroadcastConsumer` for the semantics.
 * @throws ConfigurationError on bad options
 */
export function createRabbitBroadcastConsumer(options: RabbitBroadcastConsumerOptions): BroadcastConsumer {
  const what = 'rabbitmq broadcast consumer';
  if (options === null || typeof options !== 'object')
    throw new ConfigurationError(`${what}: options required`);
  checkConnectionOptions(what, options);
  const { exchange } = options;
  if (typeof exchange !== 'string' || exchange.length === 0 || exchange.length > 255)
    throw new ConfigurationError(`${what}: exchange must be 1..255 chars`);
  const exchangeType = options.exchangeType ?? 'topic';
  if (!EXCHANGE_TYPES.has(exchangeType))
    throw new ConfigurationError(`${what}: exchangeType must be topic, direct, fanout or headers`);
  const bindings = options.bindings ?? ['#'];
  if (
    !Array.isArray(bindings) ||
    bindings.length === 0 ||
    bindings.some((b) => typeof b !== 'string' || b.length > 255)
  )
    throw new ConfigurationError(`${what}: bindings must list 1 or more binding keys`);

  return createBroadcastConsumer({
    ...options,
    what,
    source: {
      async open({ instance, deliver, failed, reconnected }): Promise<BroadcastSubscription> {
        let closed = false;
        let chain: Promise<void> = Promise.resolve();
        const onMessage = (m: ConsumeMessage | null) => {
          if (m === null || closed) return; // null: the broker cancelled the consumer (channel closes next)
          const headers = m.properties.headers as Record<string, unknown> | undefined;
          chain = chain.then(() =>
            deliver({
              attributes: amqpAttributes(headers, m.properties.contentType),
              data: m.content,
              deliveryAttempt: 1,
              source: `${exchange}/${m.fields.routingKey}`,
            }),
          );
        };
        const setup = async (ch: ConfirmChannel) => {
          if (options.declareExchange !== false)
            await ch.assertExchange(exchange, exchangeType, { durable: true });
          await ch.assertQueue(instance, { exclusive: true, autoDelete: true, durable: false });
          for (const key of bindings) await ch.bindQueue(instance, exchange, key);
          await ch.consume(instance, onMessage, { noAck: true, exclusive: true });
        };
        const channels = createChannelSource(options, setup);
        let retry: ReturnType<typeof setTimeout> | undefined;
        const reopen = () => {
          if (closed) return;
          channels.channel().then(reconnected, (error: unknown) => {
            failed(error);
            retry = setTimeout(reopen, Math.max(100, channels.retryInMs));
          });
        };
        channels.onClose((_, error) => {
          if (closed) return;
          failed(error ?? new Error('rabbitmq: channel closed'));
          reopen();
        });
        try {
          await channels.channel();
        } catch (error) {
          closed = true;
          await channels.close();
          throw error;
        }
        return {
          connected: () => channels.current !== undefined,
          async close() {
            closed = true;
            clearTimeout(retry);
            const ch = channels.current;
            if (ch !== undefined) await ch.deleteQueue(instance).catch(() => undefined);
            await chain;
            await channels.close();
          },
        };
      },
    },
  });
}
