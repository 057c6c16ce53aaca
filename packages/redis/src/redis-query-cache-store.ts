import { ConfigurationError, type QueryCacheStore } from '@cqrs-ts/core';
import type { RedisClientLike } from './redis-options.ts';

/** Options of {@link createRedisQueryCacheStore}. */
export interface RedisQueryCacheStoreOptions {
  /** Your ioredis client (you own it). Run without the offline queue, or rely on the behavior's `timeoutMs`. */
  readonly redis: Pick<RedisClientLike, 'call'>;
  /** Prefix of the tag index and generation keys. @default 'cqrs:tag:' */
  readonly tagPrefix?: string;
}

// KEYS: the value key, n generation keys, n tag-set keys. ARGV: the value, the TTL, n generations.
const SET = `local n = (#KEYS - 1) / 2
for i = 1, n do
  if tonumber(redis.call('GET', KEYS[1 + i]) or '0') ~= tonumber(ARGV[2 + i]) then return 0 end
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
for i = 1, n do
  local k = KEYS[1 + n + i]
  redis.call('SADD', k, KEYS[1])
  if redis.call('PTTL', k) < tonumber(ARGV[2]) then redis.call('PEXPIRE', k, ARGV[2]) end
end
return 1`;

// KEYS: n generation keys, n tag-set keys.
const EVICT = `local n = #KEYS / 2
for i = 1, n do
  redis.call('INCR', KEYS[i])
  redis.call('PEXPIRE', KEYS[i], 86400000)
  local members = redis.call('SMEMBERS', KEYS[n + i])
  for j = 1, #members, 500 do
    redis.call('DEL', unpack(members, j, math.min(j + 499, #members)))
  end
  redis.call('DEL', KEYS[n + i])
end
return 1`;

/**
 * Query results in Redis: a string per key with its TTL (`SET … PX`), a set per tag listing its keys, and a
 * generation counter per tag. A store is one Lua script that checks the tags' generations and writes the value
 * and the tag index together; an eviction moves the generations and deletes the tag's keys in one script. Keys
 * of one call must live on one node (one Redis, or a cluster with a `{hash tag}` in the prefixes).
 * Generation counters expire a day after their last eviction.
 * @throws ConfigurationError when `redis` has no `call`
 */
export function createRedisQueryCacheStore(options: RedisQueryCacheStoreOptions): QueryCacheStore {
  const redis = options?.redis;
  if (typeof redis?.call !== 'function')
    throw new ConfigurationError('redis query cache: redis must be an ioredis client');
  const tagPrefix = options.tagPrefix ?? 'cqrs:tag:';
  const gen = (t: string) => `${tagPrefix}g:${t}`;
  const set = (t: string) => `${tagPrefix}t:${t}`;
  return Object.freeze({
    name: 'redis query cache',
    remote: true,
    async get(key: string) {
      const text = await redis.call('GET', key);
      if (text === null || text === undefined) return undefined;
      const stored = JSON.parse(String(text)) as { v?: unknown };
      return { value: stored.v };
    },
    async generations(tags: readonly string[]) {
      if (tags.length === 0) return [];
      const values = (await redis.call('MGET', ...tags.map(gen))) as (string | null)[];
      return values.map((v) => (v === null ? 0 : Number(v)));
    },
    async set(
      key: string,
      value: unknown,
      o: { ttlMs: number; tags: readonly string[]; generations: readonly number[] },
    ) {
      const text = JSON.stringify(value === undefined ? {} : { v: value });
      const n = o.tags.length;
      const stored = await redis.call(
        'EVAL',
        SET,
        1 + 2 * n,
        key,
        ...o.tags.map(gen),
        ...o.tags.map(set),
        text,
        o.ttlMs,
        ...o.generations,
      );
      return Number(stored) === 1;
    },
    async delete(keys: readonly string[]) {
      if (keys.length > 0) await redis.call('DEL', ...keys);
    },
    async evictTags(tags: readonly string[]) {
      if (tags.length > 0)
        await redis.call('EVAL', EVICT, 2 * tags.length, ...tags.map(gen), ...tags.map(set));
    },
  });
}
