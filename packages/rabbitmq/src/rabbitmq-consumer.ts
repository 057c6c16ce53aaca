import type { Disposition, MessageConsumer, MessageProcessor } from '@cqrs-ts/core';
import { BrokerError, ConfigurationError, createMessageProcessor, noopLogger } from '@cqrs-ts/core';
import type { CloudEventAttributes } from '@cqrs-ts/core/spi';
import { createKeyedLimiter, errorText } from '@cqrs-ts/core/spi';
import type { ConfirmChannel, ConsumeMessage, Options } from 'amqplib';
import { checkConnectionOptions, createChannelSource } from './rabbitmq-connection.ts';
import { rabbitError } from './rabbitmq-errors.ts';
import type { RabbitConsumerOptions } from './rabbitmq-options.ts';
import { CLOUDEVENTS_AMQP_PREFIX, CLOUDEVENTS_AMQP_UNDERSCORE_PREFIX } from './rabbitmq-options.ts';
import type { RabbitTopology } from './rabbitmq-topology.ts';
import { declareTopology, resolveRabbitTopology } from './rabbitmq-topology.ts';

/** Header counting the failed attempts that went through a retry queue. */
export const RABBIT_ATTEMPTS_HEADER = 'x-cqrs-attempts';

/** A running RabbitMQ consumer. */
export interface RabbitConsumer extends MessageConsumer {
  /**
   * Connects, declares the topology and starts consuming. Resolves once consuming; connection failures are
   * retried with backoff (forever, until `stop()`); rejects on a topology mismatch or if stopped first.
   */
  start(): Promise<void>;
  /**
   * Cancels the subscription, finishes running handlers (messages not started are released to other consumers),
   * then closes the channel and the connection it opened. A stopped consumer cannot be started again.
   */
  stop(): Promise<void>;
  readonly topology: RabbitTopology;
  readonly processor: MessageProcessor;
}

const noop = () => {};
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

function copyHeaders(headers: Record<string, unknown> | undefined): Record<string, unknown> {
  const h: Record<string, unknown> = {};
  if (headers === undefined) return h;
  for (const k in headers) if (k !== 'x-delivery-count') h[k] = headers[k];
  return h;
}

/**
 * Creates a RabbitMQ consumer that feeds a {@link MessageProcessor} (decode, validate, inbox, dispatch) and
 * applies its disposition:
 *
 * - `ack`: the message is acknowledged only after the handler (and the inbox transaction) succeeded.
 * - `retry`: a copy goes to the retry queue whose delay fits the processor's backoff (`<queue>.retry.<ms>`, a
 *   queue-level TTL that dead-letters back to the queue), with the attempt count in `x-cqrs-attempts`; the
 *   original is acked once the copy is confirmed.
 * - `dead-letter`: a copy goes to the dead-letter queue with the reason as `cloudEvents:deadletterreason`,
 *   `cloudEvents:deadlettersource` and `cloudEvents:deadletterattempts` headers (original headers and body kept),
 *   then the original is acked. Malformed and unknown messages get there at once; consumption continues.
 *
 * Attempts: `x-cqrs-attempts` + redeliveries (`x-delivery-count` on quorum queues, the `redelivered` flag on
 * classic ones) + 1. A quorum queue's `deliveryLimit` dead-letters a message that keeps killing its consumer.
 *
 * Ordering: with `concurrency` > 1, messages with the same ordering key are handled one after another in
 * delivery order, others in parallel. This holds within one consumer; several consumers on one queue share
 * the messages round-robin (use `singleActiveConsumer` for one active consumer with failover). A retried
 * message is re-queued behind later messages of its key.
 *
 * Reconnection: after the channel, the connection or the broker goes away the consumer reconnects by itself
 * with backoff, re-declares the topology and resumes; handlers still running for the old channel are not
 * acked (their messages are redelivered: use the inbox for one effect).
 *
 * @example
 * const consumer = createRabbitConsumer({ url, exchange: 'events', queue: 'billing', bindings: ['orders.#'], mediator, catalog });
 * await consumer.start();
 */
export function createRabbitConsumer(options: RabbitConsumerOptions): RabbitConsumer {
  checkConnectionOptions('rabbitmq consumer', options);
  if (typeof options.queue !== 'string') throw new ConfigurationError('rabbitmq consumer: queue is required');
  const topology = resolveRabbitTopology(options);
  const queue = topology.queue!;
  const concurrency = options.concurrency ?? 8;
  const prefetch = options.prefetch ?? concurrency * 4;
  if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > 10_000) {
    throw new ConfigurationError('rabbitmq consumer: concurrency must be an integer in 1..10000');
  }
  if (!Number.isInteger(prefetch) || prefetch < 1 || prefetch > 65_535) {
    throw new ConfigurationError('rabbitmq consumer: prefetch must be an integer in 1..65535');
  }
  if (options.retry === false && (options.queueType ?? 'quorum') !== 'quorum') {
    throw new ConfigurationError(
      'rabbitmq consumer: retry: false counts attempts with x-delivery-count, which needs a quorum queue',
    );
  }
  const processor = createMessageProcessor({ ...options, name: options.name ?? queue });
  const logger = options.logger ?? noopLogger;
  const stopTimeoutMs = options.stopTimeoutMs ?? 30_000;
  const orderingKey =
    options.orderingKey ??
    ((m: ConsumeMessage) => {
      const k = m.properties.headers?.[`${CLOUDEVENTS_AMQP_PREFIX}partitionkey`];
      return typeof k === 'string' ? k : null;
    });
  const limiter = createKeyedLimiter(concurrency);
  const retryQueues = topology.retryQueues;
  const declare = options.declare !== false;

  let running = false;
  let stopping = false;
  let stopped = false;
  let startPromise: Promise<void> | undefined;
  let reconnecting: Promise<void> | undefined;
  let consuming: ConfirmChannel | undefined;
  let tokenSeq = 0;
  let consumerTag: string | undefined;
  /** Tokens of republished copies awaiting their confirm, and those the broker returned as unroutable. */
  const returnedTokens = new Set<string>();
  const returnedHit = new Set<string>();
  const stats = { handled: 0, duplicates: 0, retried: 0, deadLettered: 0 };
  let connections = 0;
  let lastError: string | undefined;
  /** Per channel: aborted when it closes or the consumer stops, which releases the messages held while paused. */
  const channelAborts = new WeakMap<ConfirmChannel, AbortController>();
  /** Per channel: the acks still to send (see {@link sendAcks}). */
  const channelAcks = new WeakMap<ConfirmChannel, ChannelAcks>();
  const dueChannels = new Set<ConfirmChannel>();
  let acksDue: ReturnType<typeof setImmediate> | undefined;

  const source = createChannelSource(options, async (channel) => {
    channel.on('return', (msg: ConsumeMessage) => {
      const token = msg.properties.headers?.['x-cqrs-token'];
      if (typeof token === 'string' && returnedTokens.has(token)) returnedHit.add(token);
    });
    if (declare) await declareTopology(channel, { ...options, queue }, topology);
    await channel.prefetch(prefetch, false);
    // set before consume(): deliveries can be dispatched before its reply resolves
    consuming = channel;
    channelAborts.set(channel, new AbortController());
    channelAcks.set(channel, { order: [], head: 0, settled: new Map() });
    try {
      const reply = await channel.consume(queue, (msg) => onMessage(channel, msg), { noAck: false });
      consumerTag = reply.consumerTag;
    } catch (error) {
      if (consuming === channel) consuming = undefined;
      throw error;
    }
    connections++;
  });
  source.onClose((channel, error) => {
    channelAborts.get(channel)?.abort();
    if (consuming === channel) consuming = undefined;
    if (running && !stopping) {
      if (error !== undefined) lastError = errorText(error);
      logger.warn(
        { queue, error: error === undefined ? undefined : errorText(error) },
        'rabbitmq consumer channel closed; reconnecting',
      );
      void reconnect();
    }
  });

  function onMessage(channel: ConfirmChannel, msg: ConsumeMessage | null): void {
    if (msg === null) {
      // cancelled by the broker (queue deleted): reopen, which re-declares
      logger.warn({ queue }, 'rabbitmq consumer cancelled by the broker');
      channel.close().catch(noop);
      return;
    }
    channelAcks.get(channel)?.order.push(msg.fields.deliveryTag);
    let key: string | null = null;
    try {
      key = orderingKey(msg);
    } catch {
      key = null;
    }
    limiter
      .run(key, () => handle(channel, msg))
      .catch((error: unknown) => {
        lastError = errorText(error);
        logger.error({ queue, error: lastError }, 'rabbitmq consumer task failed');
      });
  }

  function settle(channel: ConfirmChannel, msg: ConsumeMessage, how: 'ack' | 'requeue' | 'drop'): void {
    const acks = channelAcks.get(channel);
    if (acks !== undefined) {
      // an ack waits for the end of the turn; a nack goes out now and only lets the acked prefix advance
      acks.settled.set(msg.fields.deliveryTag, how === 'ack' ? msg : null);
      dueChannels.add(channel);
      acksDue ??= setImmediate(sendAcks);
      if (how === 'ack') return;
    }
    try {
      if (how === 'ack') channel.ack(msg);
      else channel.nack(msg, false, how === 'requeue');
    } catch {
      // channel gone: the broker redelivers the message
    }
  }

  /**
   * Sends the acks of one event-loop turn: amqplib writes each frame to the socket on its own, so an ack each would
   * cost a socket write each. The deliveries of a channel settled from its oldest unsettled one on are acked with
   * one `multiple` ack up to the last of them (the nacked ones among them are no longer outstanding); an ack
   * behind a message still running goes out alone.
   */
  function sendAcks(): void {
    acksDue = undefined;
    for (const channel of dueChannels) {
      const acks = channelAcks.get(channel);
      if (acks === undefined) continue;
      const { order, settled } = acks;
      let upTo = -1;
      while (acks.head < order.length) {
        const tag = order[acks.head]!;
        const msg = settled.get(tag);
        if (msg === undefined) break;
        if (msg !== null) upTo = tag;
        settled.delete(tag);
        acks.head++;
      }
      if (acks.head === order.length) {
        order.length = 0;
        acks.head = 0;
      } else if (acks.head > 1024) {
        order.splice(0, acks.head);
        acks.head = 0;
      }
      try {
        if (upTo >= 0) channel.ack({ fields: { deliveryTag: upTo } } as ConsumeMessage, true);
        for (const [tag, msg] of settled) {
          if (msg === null) continue;
          settled.set(tag, null);
          channel.ack(msg);
        }
      } catch {
        // channel gone: the broker redelivers what it did not get an ack for
      }
    }
    dueChannels.clear();
  }

  /** Publishes a copy to `target` (a queue) and waits for its confirm. */
  function republish(
    channel: ConfirmChannel,
    target: string,
    msg: ConsumeMessage,
    extra: Record<string, unknown>,
  ): Promise<void> {
    const p = msg.properties;
    const headers = copyHeaders(p.headers);
    Object.assign(headers, extra);
    const token = `${process.pid}.${++tokenSeq}`;
    headers['x-cqrs-token'] = token;
    const props: Options.Publish = { headers, deliveryMode: 2, mandatory: true };
    if (p.contentType !== undefined) props.contentType = p.contentType;
    if (p.contentEncoding !== undefined) props.contentEncoding = p.contentEncoding;
    if (p.messageId !== undefined) props.messageId = p.messageId;
    if (p.correlationId !== undefined) props.correlationId = p.correlationId;
    if (p.timestamp !== undefined) props.timestamp = p.timestamp;
    if (p.type !== undefined) props.type = p.type;
    if (p.appId !== undefined) props.appId = p.appId;
    return new Promise<void>((resolve, reject) => {
      returnedTokens.add(token);
      try {
        channel.publish('', target, msg.content, props, (err) => {
          const wasReturned = returnedHit.delete(token);
          returnedTokens.delete(token);
          if (err != null) reject(rabbitError('connection', `republish to ${target}: ${errorText(err)}`));
          else if (wasReturned) reject(rabbitError('unroutable', `queue ${target} does not exist`));
          else resolve();
        });
      } catch (error) {
        returnedTokens.delete(token);
        reject(rabbitError('connection', `republish to ${target}: ${errorText(error)}`, { cause: error }));
      }
    });
  }
  function retryQueueFor(delayMs: number): string | undefined {
    if (retryQueues.length === 0) return undefined;
    for (const r of retryQueues) if (r.delayMs >= delayMs) return r.queue;
    return retryQueues[retryQueues.length - 1]!.queue;
  }

  async function handle(channel: ConfirmChannel, msg: ConsumeMessage): Promise<void> {
    if (stopping || consuming !== channel) {
      // not started before stop (or the channel is gone): release it for another consumer
      settle(channel, msg, 'requeue');
      return;
    }
    const headers = msg.properties.headers;
    const attributes = amqpAttributes(headers, msg.properties.contentType);
    const prior = Number(headers?.[RABBIT_ATTEMPTS_HEADER]);
    const deliveryCount = headers?.['x-delivery-count'];
    const redeliveries =
      typeof deliveryCount === 'number' && deliveryCount > 0 ? deliveryCount : msg.fields.redelivered ? 1 : 0;
    const deliveryAttempt = (Number.isInteger(prior) && prior > 0 ? prior : 0) + redeliveries + 1;
    const d: Disposition = await processor.process(
      { attributes, data: msg.content, deliveryAttempt, source: queue },
      channelAborts.get(channel)?.signal,
    );
    try {
      await apply(channel, msg, d, deliveryAttempt);
    } catch (error) {
      // the copy was not confirmed: leave the original unacked, or requeue it if the channel still works
      lastError = errorText(error);
      logger.warn(
        { queue, action: d.action, error: lastError },
        'rabbitmq consumer could not apply a disposition',
      );
      if (source.current === channel) {
        await sleep(1000);
        settle(channel, msg, 'requeue');
      }
    }
  }

  async function apply(
    channel: ConfirmChannel,
    msg: ConsumeMessage,
    d: Disposition,
    attempt: number,
  ): Promise<void> {
    switch (d.action) {
      case 'release':
        settle(channel, msg, 'requeue');
        return;
      case 'ack':
        settle(channel, msg, 'ack');
        if (d.outcome === 'handled') stats.handled++;
        else stats.duplicates++;
        return;
      case 'retry': {
        const target = retryQueueFor(d.delayMs);
        if (target === undefined) {
          await sleep(d.delayMs);
          settle(channel, msg, 'requeue');
        } else {
          await republish(channel, target, msg, {
            [RABBIT_ATTEMPTS_HEADER]: attempt,
            'x-cqrs-last-error': errorText(d.error).slice(0, 500),
          });
          settle(channel, msg, 'ack');
        }
        stats.retried++;
        return;
      }
      case 'dead-letter': {
        const dlq = topology.deadLetterQueue;
        if (dlq === undefined) settle(channel, msg, 'drop');
        else {
          await republish(channel, dlq, msg, {
            [`${CLOUDEVENTS_AMQP_PREFIX}deadletterreason`]: d.reason,
            [`${CLOUDEVENTS_AMQP_PREFIX}deadlettersource`]: queue,
            [`${CLOUDEVENTS_AMQP_PREFIX}deadletterattempts`]: String(attempt),
          });
          settle(channel, msg, 'ack');
        }
        stats.deadLettered++;
        logger.warn({ queue, reason: d.reason.slice(0, 300) }, 'rabbitmq consumer dead-lettered a message');
        return;
      }
    }
  }

  async function connectOnce(): Promise<void> {
    let failures = 0;
    while (running && !stopping) {
      try {
        await source.channel();
        return;
      } catch (error) {
        if (error instanceof BrokerError && error.reason === 'topology') throw error;
        failures++;
        lastError = errorText(error);
        logger.warn({ queue, error: lastError, failures }, 'rabbitmq consumer cannot connect; retrying');
        await sleep(Math.max(source.retryInMs, Math.min(5000, 50 * 2 ** Math.min(failures, 7))));
      }
    }
    throw rabbitError('closed', 'consumer stopped before it could connect');
  }

  function reconnect(): Promise<void> {
    reconnecting ??= connectOnce()
      .catch((error: unknown) => {
        if (!stopping)
          logger.error({ queue, error: errorText(error) }, 'rabbitmq consumer gave up reconnecting');
      })
      .finally(() => {
        reconnecting = undefined;
      });
    return reconnecting;
  }

  const consumer: RabbitConsumer = {
    topology,
    processor,
    start() {
      if (startPromise !== undefined) return startPromise;
      if (stopped) return Promise.reject(rabbitError('closed', 'a stopped consumer cannot restart'));
      running = true;
      stopping = false;
      startPromise = connectOnce().catch(async (error: unknown) => {
        running = false;
        await source.close();
        throw error;
      });
      return startPromise;
    },
    async stop() {
      if (!running || stopping) return;
      stopping = true;
      stopped = true;
      const channel = consuming;
      if (channel !== undefined) channelAborts.get(channel)?.abort();
      if (channel !== undefined && consumerTag !== undefined) {
        try {
          await channel.cancel(consumerTag);
        } catch {
          // closing below cancels anyway
        }
      }
      await startPromise?.catch(noop);
      let timer: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([
        limiter.drain(),
        new Promise<void>((r) => {
          timer = setTimeout(r, stopTimeoutMs);
        }),
      ]);
      clearTimeout(timer);
      if (acksDue !== undefined) {
        clearImmediate(acksDue);
        sendAcks();
      }
      running = false;
      await reconnecting;
      await source.close();
    },
    health() {
      return {
        running,
        connected: consuming !== undefined && source.current === consuming,
        inFlight: limiter.size,
        ...stats,
        reconnects: Math.max(0, connections - 1),
        lastError,
        ...processor.pauseState(),
      };
    },
    [Symbol.asyncDispose]() {
      return consumer.stop();
    },
  };
  return consumer;
}

/** A channel's deliveries not yet acked on the wire (tags in delivery order from `head`) and those settled meanwhile. */
interface ChannelAcks {
  readonly order: number[];
  head: number;
  /** A settled delivery: its message while its ack waits, `null` once settled on the wire (a nack, a lone ack). */
  readonly settled: Map<number, ConsumeMessage | null>;
}

const UNSAFE_NAMES = new Set(['__proto__', 'constructor', 'prototype']);

/** An AMQP header value as CloudEvents text: typed values (timestamps, numbers, booleans, bytes) in canonical form. */
function attributeText(value: unknown): string | undefined {
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  if (value instanceof Date) return Number.isNaN(value.getTime()) ? undefined : value.toISOString();
  if (Buffer.isBuffer(value)) return value.toString('utf8');
  if (value !== null && typeof value === 'object') {
    // amqplib decodes an AMQP timestamp (seconds) as { '!': 'timestamp', value }
    const typed = value as { '!'?: unknown; value?: unknown };
    if (typed['!'] === 'timestamp' && typeof typed.value === 'number') {
      const date = new Date(typed.value * 1000);
      return Number.isNaN(date.getTime()) ? undefined : date.toISOString();
    }
  }
  return undefined;
}

/**
 * Reads the CloudEvents attributes of an AMQP message: application properties prefixed `cloudEvents:` (what
 * cqrs-ts writes) or `cloudEvents_` (the AMQP binding's current draft), names matched case-insensitively, typed
 * AMQP values (a native timestamp in `time`, ...) in their canonical string form; `content-type` from the
 * message's `contentType` property unless a header gives it. @internal
 */
export function amqpAttributes(
  headers: Readonly<Record<string, unknown>> | undefined,
  contentType: unknown,
): CloudEventAttributes {
  const a: Record<string, string> = {};
  if (headers !== undefined && headers !== null) {
    const colon = CLOUDEVENTS_AMQP_PREFIX.toLowerCase();
    const underscore = CLOUDEVENTS_AMQP_UNDERSCORE_PREFIX.toLowerCase();
    for (const name in headers) {
      const lower = name.toLowerCase();
      const isColon = lower.startsWith(colon);
      if (!isColon && !lower.startsWith(underscore)) continue;
      const attribute = lower.slice(colon.length);
      if (attribute.length === 0 || UNSAFE_NAMES.has(attribute)) continue;
      // both spellings present: the one cqrs-ts writes wins
      if (!isColon && a[attribute] !== undefined) continue;
      const text = attributeText(headers[name]);
      if (text !== undefined) a[attribute] = text;
    }
  }
  if (typeof contentType === 'string' && a.datacontenttype === undefined) a.datacontenttype = contentType;
  return a;
}
