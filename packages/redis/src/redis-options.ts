import type { Logger, MessageProcessor, MessageProcessorOptions } from '@cqrs-ts/core';
import { ConfigurationError } from '@cqrs-ts/core';
import type { EnvelopeCompression, OutboxMessage, PayloadSerializer } from '@cqrs-ts/core/spi';
import { Redis } from 'ioredis';

/** An argument of a Redis command: strings and numbers are sent as text, Buffers as raw bytes. */
export type RedisArgument = string | Buffer | number;

/** A pipeline or MULTI of an ioredis client (the part this package uses). */
export interface RedisPipelineLike {
  call(command: string, ...args: RedisArgument[]): unknown;
  callBuffer(command: string, ...args: RedisArgument[]): unknown;
  /** One `[error, reply]` pair per queued command. */
  exec(): Promise<[error: Error | null, result: unknown][] | null>;
}

/**
 * The part of an ioredis 5/6 `Redis` client this package uses, typed structurally so ioredis types do not leak
 * into the public API. Pass your own `new Redis(...)`.
 */
export interface RedisClientLike {
  call(command: string, ...args: RedisArgument[]): Promise<unknown>;
  callBuffer(command: string, ...args: RedisArgument[]): Promise<unknown>;
  pipeline(): RedisPipelineLike;
  multi(): RedisPipelineLike;
  /** A new connection with the same options (the consumer's blocking reads use one). */
  duplicate(): RedisClientLike;
  quit(): Promise<unknown>;
  disconnect(): void;
  on(event: string, listener: (...args: unknown[]) => void): unknown;
  off(event: string, listener: (...args: unknown[]) => void): unknown;
}

/** Where to reach Redis: your client (you own it), or a URL (the publisher or consumer owns the connection). */
export type RedisConnectionOptions =
  | { readonly redis: RedisClientLike; readonly url?: undefined }
  | { readonly url: string; readonly redis?: undefined };

/** Options of `createRedisStreamsPublisher`. */
export type RedisStreamsPublisherOptions = RedisConnectionOptions & {
  /** Prefix of the default stream name. @default '' */
  readonly streamPrefix?: string;
  /** The stream of a message. @default `streamPrefix + message.topic` */
  readonly stream?: (message: OutboxMessage) => string;
  /** Approximate trimming: `XADD ... MAXLEN ~ maxLen`. Default: no trimming. */
  readonly maxLen?: number;
  /** Compresses data of at least `thresholdBytes` (marked in `ce_contentencoding`). Default: none. */
  readonly compression?: EnvelopeCompression;
  /** Prefix of the attribute fields. @default 'ce_' */
  readonly fieldPrefix?: string;
  /**
   * Publisher-side deduplication by event id: a message whose id was appended less than this long ago is
   * reported published without a second entry (a `SET NX PX` key per id, `dedupeKeyPrefix + id`).
   * Default 0: off; XADD itself never deduplicates, pair consumers with an inbox either way.
   */
  readonly dedupeWindowMs?: number;
  /** @default 'cqrs:dedupe:' */
  readonly dedupeKeyPrefix?: string;
  /** Largest batch of one `publish` call (the relay splits bigger ones). @default 1000 */
  readonly maxBatchSize?: number;
  /** A publish not acknowledged within this time reports every message failed (retryable). @default 10000 */
  readonly timeoutMs?: number;
  /** `source` attribute of `publishEvents`. @default 'cqrs-ts' */
  readonly source?: string;
  /** Payload serializer of `publishEvents`. @default JSON */
  readonly serializer?: PayloadSerializer;
  /** Largest serialized payload accepted by `publishEvents`. @default 1048576 */
  readonly maxPayloadBytes?: number;
};

/** Options of `createRedisStreamsConsumer`. */
export type RedisStreamsConsumerOptions = RedisConnectionOptions & {
  /** Stream keys to consume (e.g. the publisher's `streamPrefix + topic`). */
  readonly streams: readonly string[];
  /** Consumer group; created on start (and again after Redis lost it) with `MKSTREAM`. */
  readonly group: string;
  /** This consumer's name in the group. @default `<hostname>-<pid>-<random>` */
  readonly consumer?: string;
  /** The message processor, or its options (`name` is the inbox consumer key). */
  readonly processor: MessageProcessor | MessageProcessorOptions;
  /** Handlers running at once; entries sharing a partition key run one after the other. @default 16 */
  readonly concurrency?: number;
  /** Entries fetched per read (`COUNT`). @default 64 */
  readonly batch?: number;
  /** Entries held locally (running + waiting for a slot); reads pause above it. @default 2 * concurrency + batch */
  readonly maxInFlight?: number;
  /** How long one `XREADGROUP` blocks. @default 2000 */
  readonly blockMs?: number;
  /**
   * A pending entry idle this long is claimed by a consumer of the group (`XAUTOCLAIM`): the crash-recovery
   * delay, and the longest retry delay. Must exceed your slowest handler. @default 30000
   */
  readonly claimIdleMs?: number;
  /** How often idle pending entries are looked for (retries due earlier trigger a pass sooner). @default 5000 */
  readonly reclaimIntervalMs?: number;
  /** Dead-letter stream of a source stream. @default `${stream}:dead-letter` */
  readonly deadLetterStream?: (stream: string) => string;
  /** Approximate `MAXLEN` of dead-letter streams. Default: no trimming. */
  readonly deadLetterMaxLen?: number;
  /** Prefix of the attribute fields. @default 'ce_' */
  readonly fieldPrefix?: string;
  /** Where a new group starts reading: `0` (everything in the stream) or `$` (only new entries). @default '0' */
  readonly startId?: '0' | '$';
  /** Graceful stop waits this long for in-flight handlers before closing. @default 30000 */
  readonly stopTimeoutMs?: number;
  readonly logger?: Logger;
};

/** A connection and whether this package must close it. @internal */
export interface OwnedClient {
  readonly client: RedisClientLike;
  readonly owned: boolean;
}

/** Resolves `redis` / `url` options. @internal */
export function connect(options: Partial<RedisConnectionOptions>, what: string): OwnedClient {
  const { redis, url } = options;
  if (redis !== undefined && url !== undefined) {
    throw new ConfigurationError(`${what}: give either redis or url, not both`);
  }
  if (redis !== undefined) {
    if (redis === null || typeof redis !== 'object' || typeof redis.pipeline !== 'function') {
      throw new ConfigurationError(`${what}: redis must be an ioredis client`);
    }
    return { client: redis, owned: false };
  }
  if (typeof url !== 'string' || !/^rediss?:\/\//.test(url)) {
    throw new ConfigurationError(`${what}: give a redis client or a redis:// url`);
  }
  const client = new Redis(url, { connectionName: 'cqrs-ts' }) as unknown as RedisClientLike;
  // Connection errors surface on commands; without a listener ioredis would print each one.
  client.on('error', () => {});
  return { client, owned: true };
}

/** Closes a connection, falling back to a hard disconnect when QUIT cannot be sent. @internal */
export async function close(client: RedisClientLike): Promise<void> {
  try {
    await Promise.race([
      client.quit(),
      new Promise((_, reject) => setTimeout(() => reject(new Error('quit timeout')), 2000).unref()),
    ]);
  } catch {
    client.disconnect();
  }
}
