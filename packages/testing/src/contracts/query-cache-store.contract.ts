/**
 * Contract of query cache stores (`QueryCacheStore` of `@cqrs-ts/core`): hits and misses, `null` and
 * `undefined` cached apart from a miss, TTLs, deletes, tag evictions and the tag generations that keep a
 * result computed before an eviction out of the cache.
 * @module
 */
import type { QueryCacheStore } from '@cqrs-ts/core';
import { expect } from 'vitest';
import { waitFor } from '../wait-for.ts';
import { describeHarness } from './harness.ts';

/** What a store adapter provides to run {@link describeQueryCacheStoreContract}. */
export interface QueryCacheStoreHarness {
  /** A store; keys the suite writes start with `prefix` (unique per test). */
  store(): QueryCacheStore;
  /** A prefix for this test's keys and tags. */
  prefix(): string;
  reset?(): Promise<void>;
  close(): Promise<void>;
}

/**
 * Registers the query cache store contract.
 * @example
 * describeQueryCacheStoreContract('in-memory', async () => ({ store: () => createInMemoryQueryCacheStore(), prefix: () => 'p:', close: async () => {} }));
 */
export function describeQueryCacheStoreContract(
  name: string,
  setup: () => Promise<QueryCacheStoreHarness | undefined>,
): void {
  const put = (s: QueryCacheStore, key: string, value: unknown, tags: string[] = [], ttlMs = 60_000) =>
    s.generations(tags).then((generations) => s.set(key, value, { ttlMs, tags, generations }));

  /** `[value]` for a hit (so `undefined` and `null` values show), `undefined` for a miss. */
  const valueAt = async (s: QueryCacheStore, key: string) => {
    const hit = await s.get(key);
    return hit === undefined ? undefined : [hit.value];
  };

  describeHarness(`${name} query cache store contract`, setup, (test) => {
    test('misses, then returns what was stored; null and undefined are values, not misses', async (h) => {
      const s = h.store();
      const p = h.prefix();
      expect(await s.get(`${p}a`)).toBeUndefined();
      expect(await put(s, `${p}a`, { id: 1, tags: ['x'] })).toBe(true);
      expect(await valueAt(s, `${p}a`)).toEqual([{ id: 1, tags: ['x'] }]);
      await put(s, `${p}null`, null);
      await put(s, `${p}undef`, undefined);
      expect(await valueAt(s, `${p}null`)).toEqual([null]);
      const u = await s.get(`${p}undef`);
      expect(u).toBeDefined();
      expect(u!.value).toBeUndefined();
    });

    test('forgets a value after its TTL, and on delete', async (h) => {
      const s = h.store();
      const p = h.prefix();
      await put(s, `${p}short`, 1, [], 30);
      await put(s, `${p}long`, 2);
      await waitFor(async () => (await s.get(`${p}short`)) === undefined, 5_000, 'the TTL');
      expect(await valueAt(s, `${p}long`)).toEqual([2]);
      await s.delete([`${p}long`]);
      expect(await s.get(`${p}long`)).toBeUndefined();
    });

    test('evicts every key of a tag and only those; an eviction moves the tag generation', async (h) => {
      const s = h.store();
      const p = h.prefix();
      await put(s, `${p}1`, 1, [`${p}order:1`, `${p}orders`]);
      await put(s, `${p}2`, 2, [`${p}order:2`, `${p}orders`]);
      await put(s, `${p}3`, 3, [`${p}order:3`]);
      const before = await s.generations([`${p}order:1`, `${p}orders`]);
      await s.evictTags([`${p}order:1`]);
      expect(await s.get(`${p}1`)).toBeUndefined();
      expect(await valueAt(s, `${p}2`)).toEqual([2]);
      await s.evictTags([`${p}orders`]);
      expect(await s.get(`${p}2`)).toBeUndefined();
      expect(await valueAt(s, `${p}3`)).toEqual([3]);
      const after = await s.generations([`${p}order:1`, `${p}orders`]);
      expect(after[0]).toBeGreaterThan(before[0]!);
      expect(after[1]).toBeGreaterThan(before[1]!);
    });

    test('refuses a value whose tag was evicted after its generations were read', async (h) => {
      const s = h.store();
      const p = h.prefix();
      const tags = [`${p}order:9`];
      const generations = await s.generations(tags);
      await s.evictTags(tags);
      expect(await s.set(`${p}9`, 'stale', { ttlMs: 60_000, tags, generations })).toBe(false);
      expect(await s.get(`${p}9`)).toBeUndefined();
      expect(await put(s, `${p}9`, 'fresh', tags)).toBe(true);
      expect(await valueAt(s, `${p}9`)).toEqual(['fresh']);
    });
  });
}
