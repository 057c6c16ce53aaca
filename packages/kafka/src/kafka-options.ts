import type { BackoffOptions, MessageProcessorOptions } from '@cqrs-ts/core';
import type { OutboxEncoderOptions, OutboxMessage, PayloadSerializer } from '@cqrs-ts/core/spi';

/**
 * The parts of a `@platformatic/kafka` `Producer` the publisher uses (structural, so the client's types do
 * not leak into this package's API). A producer you pass in must keep the default (Buffer) serializers.
 */
export interface KafkaProducerLike {
  send(options: {
    messages: KafkaRecordToProduce[];
    acks?: number;
    compression?: KafkaCompression;
  }): Promise<{ offsets?: ReadonlyArray<{ topic: string; partition: number; offset: bigint }> }>;
  metadata(options: { topics: string[] }): Promise<{
    topics: ReadonlyMap<string, { readonly partitionsCount: number }>;
  }>;
  close(force?: boolean): Promise<void>;
}

/** One record as the publisher hands it to the producer. */
export interface KafkaRecordToProduce {
  topic: string;
  /** Omitted: the producer hashes the key (or spreads keyless records). */
  partition?: number;
  key?: Buffer;
  value: Buffer;
  headers: Map<Buffer, Buffer>;
}

/** Batch compression done by the Kafka client (not the CloudEvents `contentencoding`). */
export type KafkaCompression = 'none' | 'gzip' | 'snappy' | 'lz4' | 'zstd';

/** `acks` of produce requests: all in-sync replicas, the leader only, or none. */
export type KafkaAcks = 'all' | 'leader' | 'none';

/** Picks the partition of a keyed record; the default is Kafka's (Java client's) murmur2 partitioner. */
export type KafkaPartitioner = (key: Buffer, partitions: number, message: OutboxMessage) => number;

/** Connection options shared by the publisher and the consumer when they create their own clients. */
export interface KafkaConnectionOptions {
  /** Bootstrap brokers, e.g. `['127.0.0.1:9092']`. */
  readonly brokers?: readonly string[];
  /** @default 'cqrs-ts' */
  readonly clientId?: string;
  /**
   * Extra `@platformatic/kafka` client options (tls, sasl, timeouts, retries, ...), passed through as they
   * are to the clients this package creates.
   */
  readonly clientOptions?: Readonly<Record<string, unknown>>;
}

/** Options of {@link createKafkaPublisher}. */
export interface KafkaPublisherOptions extends KafkaConnectionOptions {
  /** Your own producer instead of `brokers`: you own it (close it yourself). Default Buffer serializers only. */
  readonly producer?: KafkaProducerLike;
  /** Topic of a message. @default the outbox message's topic (the event's `topic`, else its type) */
  readonly topic?: (message: OutboxMessage) => string;
  /** @default 'all' */
  readonly acks?: KafkaAcks;
  /**
   * Idempotent producer (producer id and sequence numbers, one request in flight per connection, acks all):
   * retries cannot duplicate or reorder, which is what `capabilities.preservesKeyOrder` relies on.
   * With your own `producer`, declare here whether it is idempotent (it decides `preservesKeyOrder`).
   * @default true (false with your own producer)
   */
  readonly idempotent?: boolean;
  /** @default 'none' */
  readonly compression?: KafkaCompression;
  /** Partition of keyed records. Keyless records are spread round-robin. */
  readonly partitioner?: KafkaPartitioner;
  /** Largest `publish` batch, advertised to the relay. @default 1000 */
  readonly maxBatchSize?: number;
  /** Encoder options of `publishEvents` (source, serializer, maxPayloadBytes). */
  readonly events?: Omit<OutboxEncoderOptions, 'compression'> & { readonly serializer?: PayloadSerializer };
}

/** A consumed record as the consumer reads it from a `@platformatic/kafka` messages stream. */
export interface ConsumedKafkaMessage {
  readonly topic: string;
  readonly partition: number;
  readonly offset: bigint;
  readonly leaderEpoch: number;
  readonly key?: Buffer | null | undefined;
  readonly value?: Buffer | null | undefined;
  readonly headerEntries: ReadonlyArray<readonly [Buffer | null | undefined, Buffer | null | undefined]>;
}

/** The parts of a `@platformatic/kafka` messages stream the consumer uses. */
export interface KafkaMessageStreamLike extends AsyncIterable<ConsumedKafkaMessage> {
  close(): Promise<void>;
}

/**
 * The parts of a `@platformatic/kafka` `Consumer` the consumer uses. One you pass in must keep the default
 * (Buffer) deserializers and must not autocommit.
 */
export interface KafkaConsumerLike {
  consume(options: Record<string, unknown>): Promise<KafkaMessageStreamLike>;
  commit(options: {
    offsets: Array<{ topic: string; partition: number; offset: bigint; leaderEpoch: number }>;
  }): Promise<void>;
  close(force?: boolean): Promise<void>;
}

/** What the consumer reports through `onError` (it never throws from its loop). */
export interface KafkaConsumerErrorContext {
  readonly stage: 'consume' | 'commit' | 'dead-letter' | 'close';
  readonly topic?: string;
  readonly partition?: number;
}

/** Options of {@link createKafkaConsumer}. */
export interface KafkaConsumerOptions extends KafkaConnectionOptions, Omit<MessageProcessorOptions, 'name'> {
  /** Consumer group id; also the processor's (inbox) consumer name unless `name` is given. */
  readonly groupId: string;
  /** Inbox consumer name. @default groupId */
  readonly name?: string;
  readonly topics: readonly string[];
  /** Your own consumer client instead of `brokers` (you close it); its group id must be `groupId`. */
  readonly consumer?: KafkaConsumerLike;
  /** Handlers running at once. @default 16 */
  readonly concurrency?: number;
  /**
   * `'key'`: records sharing a key (per topic) are handled one at a time, in offset order, and records of
   * other keys in the same partition run concurrently; keyless records keep their partition's order.
   * `'partition'`: one record at a time per partition. @default 'key'
   */
  readonly ordering?: 'key' | 'partition';
  /** Records received but not finished before fetching pauses. @default concurrency * 4 */
  readonly prefetch?: number;
  /** Dead-letter topic of a source topic. @default (topic) => `${topic}.DLT` */
  readonly deadLetterTopic?: (topic: string) => string;
  /** Producer for dead letters; by default one is created (idempotent, acks all) on `brokers`. */
  readonly deadLetterProducer?: KafkaProducerLike;
  /** Where a new group starts (no committed offset). @default 'earliest' */
  readonly startFrom?: 'earliest' | 'latest';
  /** Group session timeout. @default 30000 */
  readonly sessionTimeoutMs?: number;
  /** Group heartbeat interval. @default 3000 */
  readonly heartbeatIntervalMs?: number;
  /** Longest fetch wait on the broker. @default 500 */
  readonly maxWaitTimeMs?: number;
  /** Delay before re-creating the fetch stream after an error. @default { initialMs: 500, maxMs: 30000 } */
  readonly reconnectBackoff?: BackoffOptions;
  /** Errors of the consume loop, commits and dead-lettering (the consumer keeps going). */
  readonly onError?: (error: unknown, context: KafkaConsumerErrorContext) => void;
}
