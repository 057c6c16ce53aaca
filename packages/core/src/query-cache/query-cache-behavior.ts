import { ConfigurationError } from '../errors/cqrs-error.ts';
import type { Behavior, Middleware, Next } from '../mediator/behavior.ts';
import type { DispatchContext, HandlerDescriptor } from '../mediator/dispatch-context.ts';
import type { AnyEvent, AnyMessage } from '../messages/message.ts';
import { errorText } from '../shared/error-text.ts';
import { type Logger, noopLogger } from '../shared/logger.ts';
import { canonical, KeyMemo } from './query-cache-keys.ts';
import type { CachedValue, QueryCacheStore } from './query-cache-store.ts';

/** How one query type is cached. */
export interface QueryCachePolicy<TQuery extends AnyMessage = AnyMessage> {
  /** The query definition (or its type name). */
  readonly query: string | { readonly type: string };
  /** Time to live of a result, ms. */
  readonly ttlMs: number;
  /** Tags of a result (e.g. `order:42`), computed from the query: evicting a tag evicts the result. */
  readonly tags?: (query: TQuery) => readonly string[];
  /** The result depends on who asks: the user id is part of the key (a dispatch without a user is not cached). */
  readonly perUser?: boolean;
}

/** A policy of any query type (its `tags` receive the query untyped). */
// biome-ignore lint/suspicious/noExplicitAny: a list of policies of different query types
export type AnyQueryCachePolicy = QueryCachePolicy<any>;

/** Options of {@link queryCache}. */
export interface QueryCacheOptions {
  readonly store: QueryCacheStore;
  readonly queries: readonly AnyQueryCachePolicy[];
  /** Prefix of every key, so caches of several applications can share a store. @default 'cqrs:' */
  readonly keyPrefix?: string;
  /** Bound of each store call of a remote store, ms; past it the query runs without the cache. @default 250 */
  readonly timeoutMs?: number;
  /** Called when the store fails (the query then runs its handler); never thrown to the caller. */
  readonly onError?: (error: unknown, operation: 'get' | 'set' | 'generations' | 'evict') => void;
  readonly logger?: Logger;
}

/** The cache behavior, also the handle to evict by key or by tag. */
export interface QueryCache extends Behavior {
  /** The key of a query as asked by `execution`'s tenant (and user, for a per-user query). */
  keyOf(query: AnyMessage, execution?: DispatchContext['execution']): string;
  /** Evicts the cached results of these queries (as asked by `execution`). */
  evict(queries: readonly AnyMessage[], execution?: DispatchContext['execution']): Promise<void>;
  evictTags(tags: readonly string[]): Promise<void>;
}

/** What `lookup` returns when the store threw. */
const FAILED = Symbol('failed');

/** A promise, or the promise-like answer of another promise library. */
const isThenable = <T>(value: T | PromiseLike<T>): value is PromiseLike<T> =>
  typeof (value as PromiseLike<T> | undefined)?.then === 'function';

/**
 * Caches query results. The key is the message type, the tenant, the user for a per-user query, and the
 * payload in canonical JSON, so two different queries, or two tenants, never share one. Per key, concurrent
 * misses run the handler once (single flight). `null` and `undefined` results are cached, apart from misses.
 * A failing or slow store is reported (`onError`) and the query runs its handler: the cache never fails a query.
 *
 * Place it after `authorization()` (it refuses a pipeline where an authorization behavior comes after it: a
 * cached result would skip the check). Evict by key (`evict`), by tag (`evictTags`), or from events with
 * {@link createCacheInvalidation}.
 * @throws ConfigurationError for a malformed option
 */
export function queryCache(options: QueryCacheOptions): QueryCache {
  const store = options?.store;
  if (
    typeof store?.get !== 'function' ||
    typeof store.set !== 'function' ||
    typeof store.evictTags !== 'function'
  )
    throw new ConfigurationError('queryCache(): store must be a query cache store');
  const prefix = options.keyPrefix ?? 'cqrs:';
  if (typeof prefix !== 'string' || prefix.length > 100)
    throw new ConfigurationError('queryCache(): keyPrefix must be a short string');
  const timeoutMs = store.remote === true ? (options.timeoutMs ?? 250) : undefined;
  if (timeoutMs !== undefined && !(Number.isSafeInteger(timeoutMs) && timeoutMs > 0))
    throw new ConfigurationError('queryCache(): timeoutMs must be a positive integer');
  const logger = options.logger ?? noopLogger;
  const report =
    options.onError ??
    ((error: unknown, operation: string) =>
      logger.warn(
        { store: store.name, operation, error: errorText(error) },
        'query cache unavailable; running the handler',
      ));
  const policies = new Map<string, QueryCachePolicy<AnyMessage>>();
  if (!Array.isArray(options.queries) || options.queries.length === 0)
    throw new ConfigurationError('queryCache(): queries must list at least one query policy');
  for (const p of options.queries as readonly QueryCachePolicy<AnyMessage>[]) {
    const type = typeof p?.query === 'string' ? p.query : p?.query?.type;
    if (typeof type !== 'string' || type.length === 0)
      throw new ConfigurationError('queryCache(): each policy names its query');
    if (policies.has(type)) throw new ConfigurationError(`queryCache(): two policies for ${type}`);
    if (!(Number.isSafeInteger(p.ttlMs) && p.ttlMs > 0))
      throw new ConfigurationError(`queryCache(): ${type}: ttlMs must be a positive integer`);
    if (p.tags !== undefined && typeof p.tags !== 'function')
      throw new ConfigurationError(`queryCache(): ${type}: tags must be a function`);
    policies.set(type, p);
  }
  const flights = new Map<string, Promise<unknown>>();

  const bounded = <T>(promise: Promise<T>): Promise<T> => {
    if (timeoutMs === undefined) return promise;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${store.name}: no answer in ${timeoutMs} ms`)), timeoutMs);
    });
    return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
  };

  /** The constant heads of a type's keys: `prefix` + the JSON of the type + `|`, and the same + `-|-|`. */
  const headsOf = (type: string, memo?: KeyMemo) => {
    const typed = `${prefix}${JSON.stringify(type)}|`;
    return { typed, anonymous: `${typed}-|-|`, memo };
  };
  type Heads = ReturnType<typeof headsOf>;
  /** Computed once per policy, with the memo of its keys. */
  const heads = new Map<string, Heads>();
  for (const type of policies.keys()) heads.set(type, headsOf(type, new KeyMemo()));
  const keyOf = (
    query: AnyMessage,
    execution: DispatchContext['execution'] | undefined,
    policy = policies.get(query.type),
    head = heads.get(query.type) ?? headsOf(query.type),
  ): string | undefined => {
    const tenant = execution?.tenantId ?? query.metadata?.tenantId;
    let user: string | undefined;
    if (policy?.perUser === true) {
      user = execution?.user?.id;
      if (typeof user !== 'string') return undefined;
    }
    const node = head.memo?.nodeOf(tenant, user, query.payload);
    if (node !== undefined) {
      const known = KeyMemo.keyAt(node);
      if (known !== undefined) return known;
    }
    // JSON strings are quoted, so '-' (none) never equals a tenant or a user.
    const key =
      tenant === undefined && user === undefined
        ? head.anonymous + canonical(query.payload)
        : `${head.typed}${tenant === undefined ? '-' : JSON.stringify(tenant)}|${user === undefined ? '-' : JSON.stringify(user)}|${canonical(query.payload)}`;
    if (node !== undefined) KeyMemo.remember(node, key);
    return key;
  };

  const fill = async (
    key: string,
    policy: QueryCachePolicy<AnyMessage>,
    message: AnyMessage,
    context: DispatchContext,
    next: (m: AnyMessage, c: DispatchContext) => Promise<unknown>,
  ) => {
    const tags = policy.tags?.(message) ?? [];
    let generations: readonly number[] | undefined;
    try {
      generations = tags.length === 0 ? [] : await bounded(store.generations(tags));
    } catch (error) {
      report(error, 'generations');
    }
    const result = await next(message, context);
    if (generations !== undefined) {
      try {
        await bounded(store.set(key, result, { ttlMs: policy.ttlMs, tags, generations }));
      } catch (error) {
        report(error, 'set');
      }
    }
    return result;
  };

  /** Per key, one flight: concurrent misses wait for the first one's result. */
  const single = (key: string, start: () => Promise<unknown>): Promise<unknown> => {
    const running = flights.get(key);
    if (running !== undefined) return running;
    const flight = start();
    flights.set(key, flight);
    return flight.finally(() => flights.delete(key));
  };

  /** A miss: the handler runs once per key for concurrent misses, and its result is stored. */
  const miss = (
    key: string,
    policy: QueryCachePolicy<AnyMessage>,
    message: AnyMessage,
    context: DispatchContext,
    next: Next,
  ): Promise<unknown> => single(key, () => fill(key, policy, message, context, next));

  /** A store's promised answer: its hit, else a miss. */
  const settle = async (
    answer: PromiseLike<CachedValue | undefined>,
    key: string,
    policy: QueryCachePolicy<AnyMessage>,
    message: AnyMessage,
    context: DispatchContext,
    next: Next,
  ): Promise<unknown> => {
    let hit: CachedValue | undefined;
    try {
      hit = await (timeoutMs === undefined ? answer : bounded(Promise.resolve(answer)));
    } catch (error) {
      report(error, 'get');
      return next(message, context);
    }
    if (hit !== undefined) return hit.value;
    return miss(key, policy, message, context, next);
  };

  /** The store's answer for `key`, or `FAILED` when it threw (reported). */
  const lookup = (key: string): ReturnType<QueryCacheStore['get']> | typeof FAILED => {
    try {
      return store.get(key);
    } catch (error) {
      report(error, 'get');
      return FAILED;
    }
  };

  // Not async, and no closure over a dispatch's values (V8 would allocate their context on every call): a hit of
  // a store that answers at once (the in-memory one) allocates nothing but its promise.
  const forPolicy =
    (policy: QueryCachePolicy<AnyMessage>, head: Heads): Middleware =>
    (message, context, next) => {
      try {
        const key = keyOf(message, context.execution, policy, head);
        if (key === undefined) return next(message, context);
        const answer = lookup(key);
        if (answer === FAILED) return next(message, context);
        if (isThenable(answer)) return settle(answer, key, policy, message, context, next);
        if (answer !== undefined) return Promise.resolve(answer.value);
        return miss(key, policy, message, context, next);
      } catch (error) {
        return Promise.reject(error);
      }
    };

  const checkPipeline = (pipeline: readonly Behavior[], index: number, handler: HandlerDescriptor) => {
    for (let i = index + 1; i < pipeline.length; i++) {
      if (pipeline[i]!.enforces?.includes('authorization'))
        throw new ConfigurationError(
          `${handler.messageType}: ${pipeline[i]!.name} (authorization) is placed inside the query cache; list it before, so a cached result is never served without the check`,
        );
    }
  };

  const middlewares = new Map<string, Middleware>();
  for (const [type, p] of policies) middlewares.set(type, forPolicy(p, heads.get(type)!));
  return Object.freeze({
    name: 'query cache',
    target: Object.freeze({ kinds: Object.freeze(['query'] as const) }),
    checkPipeline,
    forHandler: (handler: HandlerDescriptor) => middlewares.get(handler.messageType),
    keyOf(query: AnyMessage, execution?: DispatchContext['execution']) {
      if (typeof query?.type !== 'string') throw new ConfigurationError('keyOf() takes a query');
      const key = keyOf(query, execution);
      if (key === undefined) throw new ConfigurationError(`${query.type} is cached per user: give the user`);
      return key;
    },
    async evict(queries: readonly AnyMessage[], execution?: DispatchContext['execution']) {
      const keys: string[] = [];
      for (const q of queries) {
        const key = keyOf(q, execution);
        if (key !== undefined) keys.push(key);
      }
      await store.delete(keys);
    },
    evictTags: (tags: readonly string[]) => store.evictTags(tags),
  });
}

/** An event's effect on the cache: the tags it evicts. */
export interface CacheInvalidationRule<TEvent extends AnyEvent = AnyEvent> {
  readonly event: string | { readonly type: string };
  readonly tags: (event: TEvent) => readonly string[];
}

/** What {@link createCacheInvalidation} returns. */
export interface CacheInvalidation {
  /** Evicts the tags of these events; give it to a projection runner as `onApplied`. Failures are reported. */
  onApplied(events: readonly AnyEvent[]): Promise<void>;
  /**
   * Evicts the tags of one event: the `handle` of a broadcast consumer (`createNatsBroadcastConsumer` and its
   * siblings), so every process evicts from its own cache when the event reaches it. Failures are reported.
   */
  handle(event: AnyEvent): Promise<void>;
  /** The event types the rules name (for `on(...)` handlers without projections). */
  readonly types: readonly string[];
}

/**
 * Evicts cached results when events happen. Wire it to a projection runner (`onApplied`: the tags go once the
 * read model the query reads has the event, not when it was published, which would let a query re-cache the
 * old rows), or to plain event handlers: `on(OrderShipped, (e) => invalidation.onApplied([e]))`. With several
 * processes, each with its own cache, give `handle` to a broadcast consumer in each process.
 * @throws ConfigurationError for a malformed rule
 */
export function createCacheInvalidation(options: {
  readonly cache: Pick<QueryCache, 'evictTags'>;
  readonly rules: readonly CacheInvalidationRule<never>[];
  readonly onError?: (error: unknown) => void;
}): CacheInvalidation {
  const cache = options?.cache;
  if (typeof cache?.evictTags !== 'function')
    throw new ConfigurationError('createCacheInvalidation(): cache must be a query cache');
  const byType = new Map<string, ((e: AnyEvent) => readonly string[])[]>();
  for (const r of (options.rules ?? []) as readonly CacheInvalidationRule[]) {
    const type = typeof r?.event === 'string' ? r.event : r?.event?.type;
    if (typeof type !== 'string' || typeof r.tags !== 'function')
      throw new ConfigurationError('createCacheInvalidation(): a rule names an event and a tags function');
    byType.set(type, [...(byType.get(type) ?? []), r.tags]);
  }
  if (byType.size === 0) throw new ConfigurationError('createCacheInvalidation(): rules must not be empty');
  const onError = options.onError ?? (() => {});
  async function onApplied(events: readonly AnyEvent[]) {
    const tags = new Set<string>();
    for (const e of events) for (const f of byType.get(e.type) ?? []) for (const t of f(e)) tags.add(t);
    if (tags.size === 0) return;
    try {
      await cache.evictTags([...tags]);
    } catch (error) {
      onError(error);
    }
  }
  return Object.freeze({
    types: Object.freeze([...byType.keys()]),
    onApplied,
    handle: (event: AnyEvent) => onApplied([event]),
  });
}
