import { ConfigurationError } from '../errors/cqrs-error.ts';

/** A cached result: `value` may be `null` or `undefined` (a cached empty answer, not a miss). */
export interface CachedValue {
  readonly value: unknown;
}

/**
 * Where cached query results live. Values are JSON data (a remote store serializes them; the in-memory one
 * keeps the object itself, shared by every hit: treat results as read-only). Each tag has a
 * generation that every eviction of the tag moves, so a result computed before an eviction is not stored
 * after it (it could hold the rows the eviction was about).
 */
export interface QueryCacheStore {
  /** Names the store in reports, e.g. `redis query cache`. */
  readonly name: string;
  /** `true` for a store over the network: the behavior bounds each call with its `timeoutMs`. */
  readonly remote?: boolean;
  /** The value of `key`, `undefined` on a miss (or once expired); a local store may answer without a promise. */
  get(key: string): Promise<CachedValue | undefined> | CachedValue | undefined;
  /** The current generation of each tag, in order (0 for a tag never evicted). */
  generations(tags: readonly string[]): Promise<readonly number[]>;
  /**
   * Stores `value` under `key` for `ttlMs` and indexes it under `tags`, unless a tag's generation is no longer
   * the one given (read before the result was computed). Resolves to whether it stored.
   */
  set(
    key: string,
    value: unknown,
    options: {
      readonly ttlMs: number;
      readonly tags: readonly string[];
      readonly generations: readonly number[];
    },
  ): Promise<boolean>;
  /** Removes these keys. */
  delete(keys: readonly string[]): Promise<void>;
  /** Removes every key indexed under these tags and moves their generations. */
  evictTags(tags: readonly string[]): Promise<void>;
}

/** Options of {@link createInMemoryQueryCacheStore}. */
export interface InMemoryQueryCacheStoreOptions {
  /** Most entries kept; the least recently used goes first. @default 10000 */
  readonly maxEntries?: number;
  /**
   * Clock, epoch ms, called on every read and write. By default `Date.now()` is read once per event-loop turn
   * (and again every 256 reads within one turn), so a hit costs no clock read: an entry can outlive its TTL by
   * the rest of the turn that saw it expire.
   * @default the turn clock described above
   */
  readonly now?: () => number;
}

/** Reads of a turn clock between two reads of `Date.now()` within one event-loop turn. */
const TURN_READS = 256;

/**
 * A clock that reads `Date.now()` at its first read of an event-loop turn and then every 256 reads (a turn of
 * awaited dispatches without I/O can be long), and answers the other reads from that value.
 */
function createTurnClock(): () => number {
  let now = 0;
  let left = 0;
  let scheduled = false;
  const endTurn = () => {
    scheduled = false;
    left = 0;
  };
  return () => {
    if (left === 0) {
      now = Date.now();
      left = TURN_READS;
      if (!scheduled) {
        scheduled = true;
        setImmediate(endTurn);
      }
    }
    left--;
    return now;
  };
}

interface Entry extends CachedValue {
  readonly expires: number;
  readonly tags: readonly string[];
}

/** The in-memory {@link QueryCacheStore}, with its size for tests. */
export interface InMemoryQueryCacheStore extends QueryCacheStore {
  readonly size: number;
  /** Answers at once, without a promise. */
  get(key: string): CachedValue | undefined;
}

/**
 * Query results in process memory: a bounded LRU (a `Map` in use order) with a TTL per entry and a tag index.
 * @throws ConfigurationError for a `maxEntries` that is not a positive integer
 */
export function createInMemoryQueryCacheStore(
  options: InMemoryQueryCacheStoreOptions = {},
): InMemoryQueryCacheStore {
  const max = options.maxEntries ?? 10_000;
  if (!Number.isSafeInteger(max) || max < 1)
    throw new ConfigurationError('in-memory query cache: maxEntries must be a positive integer');
  const now = options.now ?? createTurnClock();
  const entries = new Map<string, Entry>();
  const byTag = new Map<string, Set<string>>();
  const gens = new Map<string, number>();
  let last: string | undefined;
  const unindex = (key: string, e: Entry) => {
    for (const t of e.tags) {
      const keys = byTag.get(t);
      keys?.delete(key);
      if (keys?.size === 0) byTag.delete(t);
    }
  };
  const remove = (key: string) => {
    const e = entries.get(key);
    if (e === undefined) return;
    entries.delete(key);
    unindex(key, e);
  };
  return {
    name: 'in-memory query cache',
    get size() {
      return entries.size;
    },
    get(key) {
      const e = entries.get(key);
      if (e === undefined) return undefined;
      if (e.expires <= now()) {
        remove(key);
        return undefined;
      }
      // Most recently used goes last (already there when it was the last one used).
      if (key !== last) {
        entries.delete(key);
        entries.set(key, e);
        last = key;
      }
      return e;
    },
    async generations(tags) {
      return tags.map((t) => gens.get(t) ?? 0);
    },
    async set(key, value, { ttlMs, tags, generations }) {
      for (let i = 0; i < tags.length; i++) if ((gens.get(tags[i]!) ?? 0) !== generations[i]) return false;
      remove(key);
      entries.set(key, { value, expires: now() + ttlMs, tags });
      last = key;
      for (const t of tags) {
        let keys = byTag.get(t);
        if (keys === undefined) {
          keys = new Set();
          byTag.set(t, keys);
        }
        keys.add(key);
      }
      while (entries.size > max) remove(entries.keys().next().value as string);
      return true;
    },
    async delete(keys) {
      for (const k of keys) remove(k);
    },
    async evictTags(tags) {
      for (const t of tags) {
        gens.set(t, (gens.get(t) ?? 0) + 1);
        for (const k of [...(byTag.get(t) ?? [])]) remove(k);
      }
    },
  };
}
