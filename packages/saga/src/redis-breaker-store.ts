import type { CircuitStateStore } from './circuit-breaker.ts';

/**
 * The few Redis commands the store needs, typed structurally so an `ioredis` client (or any client with the same
 * shape) fits without this package importing a driver. The caller owns the client's lifecycle.
 */
export interface RedisCircuitClient {
  set(key: string, value: string, mode: 'PX', milliseconds: number): Promise<unknown>;
  get(key: string): Promise<string | null>;
  del(key: string): Promise<number>;
}

/** Options of {@link createRedisCircuitStateStore}. */
export interface RedisCircuitStateStoreOptions {
  /** An ioredis client (or compatible). */
  readonly client: RedisCircuitClient;
  /** Key prefix. @default `cqrs:circuit:` */
  readonly prefix?: string;
  /** Clock, epoch ms (must agree across processes within the open window). @default Date.now */
  readonly now?: () => number;
}

/**
 * A {@link CircuitStateStore} in Redis: an open circuit is a key `<prefix><circuit>` holding the epoch ms until
 * which it is open, with a matching `PX` expiry, so a crashed process never leaves a circuit open for good.
 */
export function createRedisCircuitStateStore(options: RedisCircuitStateStoreOptions): CircuitStateStore {
  const { client } = options;
  const prefix = options.prefix ?? 'cqrs:circuit:';
  const now = options.now ?? Date.now;
  return {
    async openUntil(key) {
      const value = await client.get(prefix + key);
      if (value === null) return undefined;
      const until = Number(value);
      return Number.isFinite(until) ? until : undefined;
    },
    async open(key, until) {
      const ttl = Math.max(1, Math.ceil(until - now()));
      await client.set(prefix + key, String(until), 'PX', ttl);
    },
    async close(key) {
      await client.del(prefix + key);
    },
  };
}
