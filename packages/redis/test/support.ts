/** Shared helpers of the Redis tests. */
import type { RedisClientLike } from '@cqrs-ts/redis';
import { Redis } from 'ioredis';
import {
  type PrivateServer,
  service,
  startPrivateServer,
  uniqueSuffix,
} from '../../core/test/support/services.ts';

export const REDIS_URL = process.env.CQRS_REDIS_URL ?? 'redis://127.0.0.1:6379';

/** Probes Redis once, without retries; skips (or fails with CQRS_REQUIRE_SERVICES=1) when it is down. */
export function redisAvailable(): Promise<boolean> {
  return service('redis', async () => {
    const r = new Redis(REDIS_URL, { maxRetriesPerRequest: 0, retryStrategy: () => null, lazyConnect: true });
    r.on('error', () => {});
    try {
      await r.connect();
      await r.ping();
    } finally {
      r.disconnect();
    }
  });
}

/** A new ioredis client (typed as the package's structural client to prove the types fit). */
export function newRedis(): Redis & RedisClientLike {
  const r = new Redis(REDIS_URL);
  r.on('error', () => {});
  const typed: RedisClientLike = r;
  return typed as Redis & RedisClientLike;
}

/** A key prefix unique to this run and test case. */
export function keyPrefix(name: string): string {
  return `cqrs-test:${uniqueSuffix}:${name}:`;
}

/** Deletes every key under `prefix`. */
export async function deleteKeys(redis: Redis, prefix: string): Promise<void> {
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 500);
    cursor = next;
    if (keys.length > 0) await redis.del(...keys);
  } while (cursor !== '0');
}

/** Entries of a stream as `{ id, fields }` with field values as Buffers. */
export async function entries(
  redis: Redis,
  stream: string,
): Promise<{ id: string; fields: Record<string, Buffer> }[]> {
  const rows = await redis.xrangeBuffer(stream, '-', '+');
  return rows.map(([id, flat]) => {
    const fields: Record<string, Buffer> = {};
    for (let i = 0; i + 1 < flat.length; i += 2) fields[flat[i]!.toString()] = flat[i + 1]!;
    return { id: id.toString(), fields };
  });
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** A redis-server of the test's own (never the shared one) persisting every write (AOF, fsync always). */
export async function startPrivateRedis(): Promise<PrivateServer & { readonly url: string }> {
  const server = await startPrivateServer(
    'redis-server',
    (port, dir) => [
      ...['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'yes'],
      ...['--appendfsync', 'always', '--dir', dir, '--daemonize', 'no'],
    ],
    async (port) => {
      const r = new Redis(port, '127.0.0.1', {
        maxRetriesPerRequest: 0,
        retryStrategy: () => null,
        lazyConnect: true,
      });
      r.on('error', () => {});
      try {
        await r.connect();
        return (await r.ping()) === 'PONG';
      } catch {
        return false;
      } finally {
        r.disconnect();
      }
    },
  );
  return Object.assign(server, { url: `redis://127.0.0.1:${server.port}` });
}
