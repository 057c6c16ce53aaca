import type { AnyEvent } from '@cqrs-ts/core';
import { BrokerError, ConfigurationError } from '@cqrs-ts/core';
import type { MessagePublisher, OutboxMessage, PublishResult } from '@cqrs-ts/core/spi';
import { createOutboxEncoder, toOutboxMessages } from '@cqrs-ts/core/spi';
import { Producer } from '@platformatic/kafka';
import { classifyKafkaError } from './kafka-errors.ts';
import type {
  KafkaAcks,
  KafkaProducerLike,
  KafkaPublisherOptions,
  KafkaRecordToProduce,
} from './kafka-options.ts';
import { buildKafkaRecord, defaultKafkaPartitioner } from './kafka-wire.ts';

/** The Kafka {@link MessagePublisher}: for the outbox relay (`publish`) and direct use (`publishEvents`). */
export interface KafkaPublisher extends MessagePublisher, AsyncDisposable {
  /** Encodes events like the outbox does (CloudEvents attributes, serializer) and publishes them. */
  publishEvents(
    events: readonly AnyEvent[],
    options?: { readonly signal?: AbortSignal },
  ): Promise<readonly PublishResult[]>;
  /** Closes the producer if the publisher created it. */
  close(): Promise<void>;
}

const ACKS: Readonly<Record<KafkaAcks, number>> = Object.freeze({ all: -1, leader: 1, none: 0 });
const COMPRESSIONS = new Set(['none', 'gzip', 'snappy', 'lz4', 'zstd']);

/** Validates the options shared by the Kafka clients. @internal */
export function assertBrokers(brokers: unknown, what: string): string[] {
  if (!Array.isArray(brokers) || brokers.length === 0) {
    throw new ConfigurationError(`${what}: give brokers (e.g. ['127.0.0.1:9092']) or your own client`);
  }
  for (const b of brokers) {
    if (typeof b !== 'string' || !/^[^\s:]+:\d{1,5}$/.test(b)) {
      throw new ConfigurationError(
        `${what}: broker ${JSON.stringify(String(b).slice(0, 80))} is not host:port`,
      );
    }
  }
  return [...brokers];
}

/** Parses a `KAFKA_BROKERS`-style list (`host:port,host:port`). */
export function parseKafkaBrokers(value: string | undefined): string[] {
  return (value ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
}

/**
 * Creates the Kafka publisher. Each `publish` call is one produce request per partition leader (the client
 * batches per destination); the record key is the event's ordering key and the partition is chosen here
 * (Kafka's murmur2 by default), so every message's result is known even when one broker fails: messages on
 * partitions that were written are `ok`, the others fail (retryable).
 *
 * `capabilities.preservesKeyOrder` is `true` with the idempotent producer (the default): a key's messages
 * share one partition and one record batch (written or rejected as a whole), and the idempotent producer's
 * retries neither duplicate nor reorder. Without it, client retries could reorder concurrent sends, so it is
 * `false` and the relay sends one message per key per call.
 */
export function createKafkaPublisher(options: KafkaPublisherOptions): KafkaPublisher {
  if (options === null || typeof options !== 'object') {
    throw new ConfigurationError('kafka publisher: options are required');
  }
  const acksName = options.acks ?? 'all';
  const acks = ACKS[acksName];
  if (acks === undefined) throw new ConfigurationError(`kafka publisher: acks must be all, leader or none`);
  const owned = options.producer === undefined;
  const idempotent = options.idempotent ?? owned;
  if (idempotent && acks !== -1 && options.producer === undefined) {
    throw new ConfigurationError('kafka publisher: an idempotent producer needs acks all');
  }
  const compression = options.compression ?? 'none';
  if (!COMPRESSIONS.has(compression)) {
    throw new ConfigurationError(`kafka publisher: unknown compression ${String(compression)}`);
  }
  const maxBatchSize = options.maxBatchSize ?? 1000;
  if (!Number.isInteger(maxBatchSize) || maxBatchSize < 1) {
    throw new ConfigurationError('kafka publisher: maxBatchSize must be an integer >= 1');
  }
  const clientId = options.clientId ?? 'cqrs-ts';
  const topicOf = options.topic ?? ((m: OutboxMessage) => m.topic);
  const partitioner = options.partitioner ?? defaultKafkaPartitioner;
  const producer: KafkaProducerLike =
    options.producer ??
    (new Producer({
      // the idempotent producer would otherwise retry forever (a publish to a down cluster never returns);
      // the outbox relay retries failed messages itself
      retries: 3,
      ...(options.clientOptions ?? {}),
      clientId,
      bootstrapBrokers: assertBrokers(options.brokers, 'kafka publisher'),
      idempotent,
      acks,
      compression,
    }) as unknown as KafkaProducerLike);
  const encoder = createOutboxEncoder(options.events ?? {});
  const roundRobin = new Map<string, number>();
  let closed = false;

  async function partitionCounts(topics: string[]): Promise<ReadonlyMap<string, number>> {
    const metadata = await producer.metadata({ topics });
    const counts = new Map<string, number>();
    for (const t of topics) {
      const n = metadata.topics.get(t)?.partitionsCount;
      if (n === undefined || n < 1)
        throw new BrokerError('unavailable', `kafka: topic ${t} has no partitions`);
      counts.set(t, n);
    }
    return counts;
  }

  function build(batch: readonly OutboxMessage[], counts: ReadonlyMap<string, number>, topics: string[]) {
    const records: KafkaRecordToProduce[] = new Array(batch.length);
    for (let i = 0; i < batch.length; i++) {
      const m = batch[i] as OutboxMessage;
      const topic = topics[i] as string;
      const n = counts.get(topic) as number;
      let partition: number;
      if (m.key !== null) {
        partition = partitioner(Buffer.from(m.key, 'utf8'), n, m);
        if (!Number.isInteger(partition) || partition < 0 || partition >= n) {
          throw new ConfigurationError(
            `kafka publisher: partitioner returned ${partition} for ${n} partitions`,
          );
        }
      } else {
        const next = roundRobin.get(topic) ?? 0;
        roundRobin.set(topic, (next + 1) % n);
        partition = next % n;
      }
      records[i] = buildKafkaRecord(m, topic, partition);
    }
    return records;
  }

  /** Settles with `op`, or rejects when `signal` aborts first (the request may still complete: at-least-once). */
  function abortable<T>(op: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
    if (signal === undefined) return op;
    return new Promise<T>((resolve, reject) => {
      const onAbort = () =>
        reject(new BrokerError('cancelled', 'kafka: publish aborted', { cause: signal.reason }));
      signal.addEventListener('abort', onAbort, { once: true });
      op.then(
        (v) => {
          signal.removeEventListener('abort', onAbort);
          resolve(v);
        },
        (e: unknown) => {
          signal.removeEventListener('abort', onAbort);
          reject(e);
        },
      );
    });
  }

  async function publish(
    batch: readonly OutboxMessage[],
    publishOptions?: { readonly signal?: AbortSignal },
  ): Promise<readonly PublishResult[]> {
    const signal = publishOptions?.signal;
    if (closed) throw new BrokerError('closed', 'kafka: publisher is closed');
    if (batch.length === 0) return [];
    signal?.throwIfAborted();
    const topics: string[] = new Array(batch.length);
    const distinct = new Set<string>();
    for (let i = 0; i < batch.length; i++) {
      const t = topicOf(batch[i] as OutboxMessage);
      if (typeof t !== 'string' || t.length === 0 || t.length > 249 || !/^[a-zA-Z0-9._-]+$/.test(t)) {
        throw new ConfigurationError(
          `kafka publisher: invalid topic ${JSON.stringify(String(t).slice(0, 80))}`,
        );
      }
      topics[i] = t;
      distinct.add(t);
    }
    let counts: ReadonlyMap<string, number>;
    try {
      counts = await abortable(partitionCounts([...distinct]), signal);
    } catch (cause) {
      if (cause instanceof ConfigurationError) throw cause;
      throw classifyKafkaError(cause, `metadata of ${[...distinct].join(', ')}`);
    }
    const records = build(batch, counts, topics);
    try {
      await abortable(producer.send({ messages: records, acks, compression }), signal);
      return batch.map(() => OK);
    } catch (cause) {
      // `produced` lists the partitions whose produce request succeeded
      const produced = (cause as { produced?: { offsets?: Array<{ topic: string; partition: number }> } })
        .produced?.offsets;
      const written = new Set((produced ?? []).map((o) => `${o.topic}\u0000${o.partition}`));
      const error = classifyKafkaError(cause, 'produce');
      return records.map((r) =>
        written.has(`${r.topic}\u0000${r.partition}`)
          ? OK
          : { ok: false as const, error, retryable: error.retryable },
      );
    }
  }

  const publisher: KafkaPublisher = {
    capabilities: Object.freeze({
      preservesKeyOrder: idempotent,
      maxBatchSize,
    }),
    publish,
    async publishEvents(events, publishOptions) {
      const messages = toOutboxMessages(encoder.encode(events, Date.now()));
      const results: PublishResult[] = [];
      for (let i = 0; i < messages.length; i += maxBatchSize) {
        results.push(...(await publish(messages.slice(i, i + maxBatchSize), publishOptions)));
      }
      return results;
    },
    async close() {
      if (closed) return;
      closed = true;
      if (owned) await producer.close();
    },
    async [Symbol.asyncDispose]() {
      await publisher.close();
    },
  };
  return publisher;
}

const OK: PublishResult = Object.freeze({ ok: true });
