import { ConfigurationError } from '@cqrs-ts/core';
import { errorText } from '@cqrs-ts/core/spi';
import type { Channel } from 'amqplib';
import { checkConnectionOptions, createChannelSource } from './rabbitmq-connection.ts';
import { topologyError } from './rabbitmq-errors.ts';
import type { RabbitConnectionOptions } from './rabbitmq-options.ts';

/** Exchange types the adapters declare. `x-consistent-hash` needs the `rabbitmq_consistent_hash_exchange` plugin. */
export type RabbitExchangeType = 'topic' | 'direct' | 'fanout' | 'headers' | 'x-consistent-hash';

/** Default redelivery delays (ms) of the retry queues. */
export const DEFAULT_RETRY_DELAYS_MS: readonly number[] = Object.freeze([200, 1000, 5000, 30_000]);

/** What to declare. Every name is also what the consumer and publisher use, so share one object. */
export interface RabbitTopologyOptions {
  /** The durable exchange events are published to. Omit to declare only queues. */
  readonly exchange?: string;
  /** @default 'topic' */
  readonly exchangeType?: RabbitExchangeType;
  /** Extra exchange arguments, e.g. `{ 'hash-header': 'cloudEvents:partitionkey' }` for consistent hashing. */
  readonly exchangeArguments?: Readonly<Record<string, unknown>>;
  /** The consumer's durable queue. Omit to declare only the exchange. */
  readonly queue?: string;
  /**
   * `quorum` (replicated, bounded crash redeliveries via `deliveryLimit`) or `classic`.
   * @default 'quorum'
   */
  readonly queueType?: 'quorum' | 'classic';
  /**
   * Binding keys of `queue` on `exchange` (topic patterns such as `orders.#`). @default ['#'] (for
   * `x-consistent-hash`: a weight, default ['1'])
   */
  readonly bindings?: readonly string[];
  /**
   * The dead-letter queue (default `<queue>.dead`), or `false` for none (dead-lettered messages are then
   * dropped). The consumer publishes poison and malformed messages there with the reason in headers; the broker
   * dead-letters there too when a quorum queue's `deliveryLimit` is exceeded.
   */
  readonly deadLetter?: { readonly queue?: string } | false;
  /**
   * Retry queues (`<queue>.retry.<ms>`), one per delay: a retried message waits in the queue whose delay is the
   * smallest one at least the processor's backoff delay (the largest when none is), then the broker
   * dead-letters it back to `queue`. `false`: retries are requeued at once (no delay).
   * @default { delaysMs: [200, 1000, 5000, 30000] }
   */
  readonly retry?: { readonly delaysMs?: readonly number[] } | false;
  /**
   * Quorum queues only: deliveries of one message (crash redeliveries, requeues) before the broker
   * dead-letters it; guards against a message that kills its consumer. @default 20
   */
  readonly deliveryLimit?: number;
  /** `x-single-active-consumer`: one consumer at a time gets messages (strict order across processes). */
  readonly singleActiveConsumer?: boolean;
  /** Extra queue arguments. */
  readonly queueArguments?: Readonly<Record<string, unknown>>;
}

/** Resolved names of a topology. */
export interface RabbitTopology {
  readonly exchange: string | undefined;
  readonly exchangeType: RabbitExchangeType;
  readonly queue: string | undefined;
  readonly deadLetterQueue: string | undefined;
  /** Retry queues by delay, ascending. */
  readonly retryQueues: readonly { readonly delayMs: number; readonly queue: string }[];
}

const NAME_RE = /^[\w.:\-/]{1,200}$/;

function checkName(what: string, name: string | undefined): void {
  if (name === undefined) return;
  if (typeof name !== 'string' || !NAME_RE.test(name) || name.startsWith('amq.')) {
    throw new ConfigurationError(
      `rabbitmq topology: ${what} must be 1..200 chars of letters, digits, _ . : - / and not start with amq.`,
    );
  }
}

/** Resolves and validates names and delays without touching the broker. @throws ConfigurationError */
export function resolveRabbitTopology(options: RabbitTopologyOptions): RabbitTopology {
  checkName('exchange', options.exchange);
  checkName('queue', options.queue);
  const exchangeType = options.exchangeType ?? 'topic';
  if (!['topic', 'direct', 'fanout', 'headers', 'x-consistent-hash'].includes(exchangeType)) {
    throw new ConfigurationError(`rabbitmq topology: unknown exchange type ${String(exchangeType)}`);
  }
  const queueType = options.queueType ?? 'quorum';
  if (queueType !== 'quorum' && queueType !== 'classic') {
    throw new ConfigurationError(`rabbitmq topology: queueType must be quorum or classic`);
  }
  const queue = options.queue;
  let deadLetterQueue: string | undefined;
  let retryQueues: { delayMs: number; queue: string }[] = [];
  if (queue !== undefined) {
    if (options.deadLetter !== false) {
      deadLetterQueue = options.deadLetter?.queue ?? `${queue}.dead`;
      checkName('deadLetter.queue', deadLetterQueue);
    }
    if (options.retry !== false) {
      const delays = options.retry?.delaysMs ?? DEFAULT_RETRY_DELAYS_MS;
      if (!Array.isArray(delays) || delays.length === 0 || delays.length > 20) {
        throw new ConfigurationError('rabbitmq topology: retry.delaysMs must list 1..20 delays');
      }
      const sorted = [...new Set(delays)].sort((a, b) => a - b);
      for (const d of sorted) {
        if (!Number.isInteger(d) || d < 1 || d > 24 * 3600_000) {
          throw new ConfigurationError('rabbitmq topology: retry delays must be integers in 1..86400000 ms');
        }
      }
      retryQueues = sorted.map((delayMs) => ({ delayMs, queue: `${queue}.retry.${delayMs}` }));
    }
  }
  const limit = options.deliveryLimit ?? 20;
  if (!Number.isInteger(limit) || limit < 1) {
    throw new ConfigurationError('rabbitmq topology: deliveryLimit must be an integer >= 1');
  }
  return Object.freeze({
    exchange: options.exchange,
    exchangeType,
    queue,
    deadLetterQueue,
    retryQueues: Object.freeze(retryQueues.map((r) => Object.freeze(r))),
  });
}

/** Declares on an open channel. A mismatch with what exists closes the channel (406). @internal */
export async function declareTopology(
  channel: Pick<Channel, 'assertExchange' | 'assertQueue' | 'bindQueue'>,
  options: RabbitTopologyOptions,
  topology: RabbitTopology = resolveRabbitTopology(options),
): Promise<RabbitTopology> {
  const { exchange, exchangeType, queue, deadLetterQueue } = topology;
  const queueType = options.queueType ?? 'quorum';
  try {
    if (exchange !== undefined) {
      await channel.assertExchange(exchange, exchangeType, {
        durable: true,
        ...(options.exchangeArguments !== undefined ? { arguments: { ...options.exchangeArguments } } : {}),
      });
    }
    if (queue === undefined) return topology;
    if (deadLetterQueue !== undefined) {
      await channel.assertQueue(deadLetterQueue, {
        durable: true,
        arguments: { 'x-queue-type': queueType },
      });
    }
    const args: Record<string, unknown> = { 'x-queue-type': queueType };
    if (deadLetterQueue !== undefined) {
      args['x-dead-letter-exchange'] = '';
      args['x-dead-letter-routing-key'] = deadLetterQueue;
    }
    if (queueType === 'quorum') args['x-delivery-limit'] = options.deliveryLimit ?? 20;
    if (options.singleActiveConsumer === true) args['x-single-active-consumer'] = true;
    Object.assign(args, options.queueArguments);
    await channel.assertQueue(queue, { durable: true, arguments: args });
    for (const r of topology.retryQueues) {
      await channel.assertQueue(r.queue, {
        durable: true,
        arguments: {
          'x-queue-type': 'classic',
          'x-message-ttl': r.delayMs,
          'x-dead-letter-exchange': '',
          'x-dead-letter-routing-key': queue,
        },
      });
    }
    if (exchange !== undefined) {
      const bindings = options.bindings ?? [exchangeType === 'x-consistent-hash' ? '1' : '#'];
      for (const b of bindings) {
        if (typeof b !== 'string' || Buffer.byteLength(b) > 255) {
          throw new ConfigurationError(
            'rabbitmq topology: a binding key must be a string of at most 255 bytes',
          );
        }
        await channel.bindQueue(queue, exchange, b);
      }
    }
    return topology;
  } catch (error) {
    if (error instanceof ConfigurationError) throw error;
    throw topologyError(error, String(queue ?? exchange), errorText(error));
  }
}

/**
 * Declares the exchange, the consumer's queue (quorum by default, dead-lettering to the DLQ), the dead-letter
 * queue, the retry queues and the bindings. Idempotent: declaring the same topology again changes nothing.
 * Declaring a queue that exists with other arguments fails with a `topology` `BrokerError`
 * (RabbitMQ never changes a queue's arguments; delete the queue or use a new name).
 *
 * @example
 * await ensureRabbitTopology({ url: 'amqp://127.0.0.1', exchange: 'events', queue: 'billing', bindings: ['orders.#'] });
 * @throws BrokerError (`topology`, `connection`), ConfigurationError
 */
export async function ensureRabbitTopology(
  options: RabbitTopologyOptions & RabbitConnectionOptions,
): Promise<RabbitTopology> {
  checkConnectionOptions('ensureRabbitTopology', options);
  const topology = resolveRabbitTopology(options);
  const source = createChannelSource({ ...options, reconnect: { initialMs: 0, maxMs: 0 } });
  try {
    const channel = await source.channel();
    return await declareTopology(channel, options, topology);
  } finally {
    await source.close();
  }
}
