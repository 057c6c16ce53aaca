import { ConfigurationError, CqrsError } from '@cqrs-ts/core';
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

/** A Redis Streams operation failed (code `CQRS_BROKER`); `retryable` tells whether trying again can help. */
export class RedisStreamsError extends CqrsError {
  readonly retryable: boolean;
  constructor(message: string, options?: { cause?: unknown; retryable?: boolean }) {
    super('CQRS_BROKER', message, options);
    this.name = 'RedisStreamsError';
    this.retryable = options?.retryable ?? true;
  }
}

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

const decoder = new TextDecoder();

/** A reply element as text. @internal */
export function text(value: unknown): string {
  if (typeof value === 'string') return value;
  if (value instanceof Uint8Array) return decoder.decode(value);
  return String(value);
}

/** The message of an error reply, or `undefined`. @internal */
export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** True for a `NOGROUP` reply (the stream or its group is gone, e.g. Redis restarted without data). @internal */
export function isNoGroup(error: unknown): boolean {
  return errorMessage(error).startsWith('NOGROUP');
}
