import {
  authorization,
  createCacheInvalidation,
  createInMemoryEventStore,
  createInMemoryOutboxStore,
  createInMemoryProjectionStore,
  createInMemoryQueryCacheStore,
  createMediator,
  createProjectionRunner,
  defineDocumentProjection,
  defineEvent,
  defineQuery,
  handle,
  isCqrsError,
  on,
  type QueryCacheStore,
  queryCache,
} from '@cqrs-ts/core';
import { afterEach, describe, expect, it, vi } from 'vitest';

const GetOrder = defineQuery('qc.get-order')
  .withPayload<{ id: string; fields?: string[] }>()
  .returns<{ id: string; status: string } | null>();
const MyOrders = defineQuery('qc.my-orders').withPayload<{ page: number }>().returns<string[]>();
const OrderShipped = defineEvent('qc.order-shipped').withPayload<{ id: string }>();

function world(
  store: QueryCacheStore = createInMemoryQueryCacheStore(),
  extra: { onError?: (e: unknown) => void } = {},
) {
  const rows = new Map<string, string>([['1', 'placed']]);
  const calls = { get: 0, mine: 0 };
  let gate: Promise<void> | undefined;
  const cache = queryCache({
    store,
    queries: [
      { query: GetOrder, ttlMs: 60_000, tags: (q) => [`order:${q.payload.id}`] },
      { query: MyOrders, ttlMs: 60_000, perUser: true },
    ],
    ...(extra.onError ? { onError: extra.onError } : {}),
  });
  const mediator = createMediator({
    behaviors: [cache],
    handlers: [
      handle(GetOrder, async (q) => {
        calls.get++;
        const status = rows.get(q.payload.id);
        await gate;
        return status === undefined ? null : { id: q.payload.id, status };
      }),
      handle(MyOrders, (_q, ctx) => {
        calls.mine++;
        return [`orders of ${ctx.execution.user?.id ?? 'nobody'}`];
      }),
    ],
  });
  return {
    cache,
    mediator,
    rows,
    calls,
    hold() {
      let open!: () => void;
      gate = new Promise((resolve) => (open = resolve));
      return () => {
        gate = undefined;
        open();
      };
    },
  };
}

describe('query cache', () => {
  afterEach(() => {
    vi.restoreAllMocks();
    vi.useRealTimers();
  });

  it('answers a repeated query from the cache; the payload key order does not matter', async () => {
    const w = world();
    const a = await w.mediator.query(GetOrder.create({ id: '1', fields: ['status'] }));
    w.rows.set('1', 'changed');
    const b = await w.mediator.query(GetOrder.create({ fields: ['status'], id: '1' } as never));
    expect(a).toEqual({ id: '1', status: 'placed' });
    expect(b).toEqual(a);
    expect(w.calls.get).toBe(1);
  });

  it('never shares a key between payloads, tenants or users; a per-user query without a user is not cached', async () => {
    const w = world();
    await w.mediator.query(GetOrder.create({ id: '1' }), { context: { tenantId: 't1' } });
    await w.mediator.query(GetOrder.create({ id: '1' }), { context: { tenantId: 't2' } });
    await w.mediator.query(GetOrder.create({ id: '2' }), { context: { tenantId: 't1' } });
    expect(w.calls.get).toBe(3);
    const alice = await w.mediator.query(MyOrders.create({ page: 1 }), {
      context: { user: { id: 'alice' } },
    });
    const bob = await w.mediator.query(MyOrders.create({ page: 1 }), { context: { user: { id: 'bob' } } });
    expect([alice, bob]).toEqual([['orders of alice'], ['orders of bob']]);
    await w.mediator.query(MyOrders.create({ page: 1 }), { context: { user: { id: 'alice' } } });
    await w.mediator.query(MyOrders.create({ page: 1 }));
    await w.mediator.query(MyOrders.create({ page: 1 }));
    expect(w.calls.mine).toBe(4);
    expect(w.cache.keyOf(GetOrder.create({ id: '1' }), { tenantId: 't1' })).not.toBe(
      w.cache.keyOf(GetOrder.create({ id: '1' }), { tenantId: 't2' }),
    );
  });

  it('caches a null result apart from a miss', async () => {
    const w = world();
    expect(await w.mediator.query(GetOrder.create({ id: 'none' }))).toBeNull();
    w.rows.set('none', 'placed');
    expect(await w.mediator.query(GetOrder.create({ id: 'none' }))).toBeNull();
    expect(w.calls.get).toBe(1);
  });

  it('expires a result after its TTL', async () => {
    let now = 1_000;
    const w = world(createInMemoryQueryCacheStore({ now: () => now }));
    await w.mediator.query(GetOrder.create({ id: '1' }));
    now += 59_999;
    await w.mediator.query(GetOrder.create({ id: '1' }));
    now += 1;
    await w.mediator.query(GetOrder.create({ id: '1' }));
    expect(w.calls.get).toBe(2);
  });

  it('runs the handler once for 100 concurrent misses of one key', async () => {
    const w = world();
    const open = w.hold();
    const all = Array.from({ length: 100 }, () => w.mediator.query(GetOrder.create({ id: '1' })));
    open();
    const results = await Promise.all(all);
    expect(w.calls.get).toBe(1);
    expect(new Set(results.map((r) => JSON.stringify(r))).size).toBe(1);
  });

  it('evicts by key and by tag', async () => {
    const w = world();
    await w.mediator.query(GetOrder.create({ id: '1' }));
    await w.cache.evict([GetOrder.create({ id: '1' })]);
    await w.mediator.query(GetOrder.create({ id: '1' }));
    await w.cache.evictTags(['order:1']);
    await w.mediator.query(GetOrder.create({ id: '1' }));
    await w.mediator.query(GetOrder.create({ id: '1' }));
    expect(w.calls.get).toBe(3);
  });

  it('does not store a result computed before an eviction of its tag (it may hold the evicted rows)', async () => {
    const w = world();
    const open = w.hold();
    const stale = w.mediator.query(GetOrder.create({ id: '1' }));
    // The handler has read the row (and the behavior the tag's generation) when the row changes.
    while (w.calls.get === 0) await new Promise((resolve) => setImmediate(resolve));
    w.rows.set('1', 'shipped');
    await w.cache.evictTags(['order:1']);
    open();
    expect(await stale).toEqual({ id: '1', status: 'placed' });
    expect(await w.mediator.query(GetOrder.create({ id: '1' }))).toEqual({ id: '1', status: 'shipped' });
  });

  it('runs the handler when the store fails or does not answer, and reports it', async () => {
    const errors: unknown[] = [];
    const broken: QueryCacheStore = {
      name: 'broken',
      get: () => Promise.reject(new Error('down')),
      generations: () => Promise.reject(new Error('down')),
      set: () => Promise.reject(new Error('down')),
      delete: () => Promise.reject(new Error('down')),
      evictTags: () => Promise.reject(new Error('down')),
    };
    const w = world(broken, { onError: (e) => errors.push(e) });
    expect(await w.mediator.query(GetOrder.create({ id: '1' }))).toEqual({ id: '1', status: 'placed' });
    expect(errors.length).toBeGreaterThan(0);
    const hanging: QueryCacheStore = {
      ...broken,
      remote: true,
      get: () => new Promise(() => {}),
    };
    const cache = queryCache({
      store: hanging,
      queries: [{ query: GetOrder, ttlMs: 1000 }],
      timeoutMs: 20,
      onError: (e) => errors.push(e),
    });
    const mediator = createMediator({ behaviors: [cache], handlers: [handle(GetOrder, () => null)] });
    expect(await mediator.query(GetOrder.create({ id: '1' }))).toBeNull();
    expect(String(errors.at(-1))).toContain('no answer in 20 ms');
  });

  it('keeps one key format with and without a tenant, so processes of two versions share a remote store', () => {
    const w = world();
    const q = GetOrder.create({ id: '1' });
    expect(w.cache.keyOf(q)).toBe('cqrs:"qc.get-order"|-|-|{"id":"1"}');
    expect(w.cache.keyOf(q, { tenantId: 't1' })).toBe('cqrs:"qc.get-order"|"t1"|-|{"id":"1"}');
    expect(w.cache.keyOf(MyOrders.create({ page: 2 }), { user: { id: 'al' } })).toBe(
      'cqrs:"qc.my-orders"|-|"al"|{"page":2}',
    );
  });

  it('finds the key of a repeated flat payload without serializing it, and keeps different payloads apart', async () => {
    const w = world();
    const Search = defineQuery('qc.search').withPayload<Record<string, unknown>>().returns<number>();
    const cache = queryCache({
      store: createInMemoryQueryCacheStore(),
      queries: [{ query: Search, ttlMs: 1000 }],
    });
    await w.mediator.query(GetOrder.create({ id: '1' }));
    const stringify = vi.spyOn(JSON, 'stringify');
    await w.mediator.query(GetOrder.create({ id: '1' }));
    expect(w.cache.keyOf(GetOrder.create({ id: '1' }))).toBe('cqrs:"qc.get-order"|-|-|{"id":"1"}');
    expect(stringify).not.toHaveBeenCalled();
    expect(w.calls.get).toBe(1);
    stringify.mockRestore();
    const keys = [
      { n: 2 },
      { n: '2' },
      { n: true },
      { n: null },
      { n: 2, m: 1 },
      { m: 1, n: 2 },
      { n: [2] },
    ].map((payload) => cache.keyOf(Search.create(payload)));
    expect(keys).toEqual([
      'cqrs:"qc.search"|-|-|{"n":2}',
      'cqrs:"qc.search"|-|-|{"n":"2"}',
      'cqrs:"qc.search"|-|-|{"n":true}',
      'cqrs:"qc.search"|-|-|{"n":null}',
      'cqrs:"qc.search"|-|-|{"m":1,"n":2}',
      'cqrs:"qc.search"|-|-|{"m":1,"n":2}',
      'cqrs:"qc.search"|-|-|{"n":[2]}',
    ]);
    expect(cache.keyOf(Search.create({ n: 2 }), { tenantId: 't1' })).toBe('cqrs:"qc.search"|"t1"|-|{"n":2}');
    expect(cache.keyOf(Search.create({ n: 2 }))).toBe('cqrs:"qc.search"|-|-|{"n":2}');
  });

  it('reads the clock once per event-loop turn for hits by default, and still expires results across turns', async () => {
    vi.useFakeTimers({ now: 1_000 });
    const now = vi.spyOn(Date, 'now');
    const store = createInMemoryQueryCacheStore();
    await store.set('k', 'v', { ttlMs: 60_000, tags: [], generations: [] });
    vi.advanceTimersByTime(10);
    const before = now.mock.calls.length;
    for (let i = 0; i < 100; i++) expect(store.get('k')?.value).toBe('v');
    expect(now.mock.calls.length - before).toBeLessThanOrEqual(1);
    vi.advanceTimersByTime(59_989);
    expect(store.get('k')?.value).toBe('v');
    vi.advanceTimersByTime(1);
    expect(store.get('k')).toBeUndefined();
    // A turn of awaited dispatches without I/O does not end: the clock is read again every 256 reads of it.
    await store.set('j', 'v', { ttlMs: 60_000, tags: [], generations: [] });
    vi.setSystemTime(Date.now() + 60_000);
    const reads = Array.from({ length: 256 }, () => store.get('j'));
    expect(reads.at(-1)).toBeUndefined();
  });

  it("takes a store's answer that is a thenable but not a native promise as an answer, not as a hit", async () => {
    const inner = createInMemoryQueryCacheStore();
    const store: QueryCacheStore = {
      ...inner,
      name: 'thenable',
      get: (key) =>
        ({
          // biome-ignore lint/suspicious/noThenProperty: a promise-like answer of another promise library
          then: (resolve: (v: unknown) => unknown, reject: (e: unknown) => unknown) =>
            Promise.resolve(inner.get(key)).then(resolve, reject),
        }) as never,
    };
    const w = world(store);
    expect(await w.mediator.query(GetOrder.create({ id: '1' }))).toEqual({ id: '1', status: 'placed' });
    expect(await w.mediator.query(GetOrder.create({ id: '1' }))).toEqual({ id: '1', status: 'placed' });
    expect(w.calls.get).toBe(1);
  });

  it('runs the handler when a local store throws at once, and reports it', async () => {
    const errors: unknown[] = [];
    const store: QueryCacheStore = {
      ...createInMemoryQueryCacheStore(),
      name: 'throwing',
      get: () => {
        throw new Error('corrupt');
      },
    };
    const w = world(store, { onError: (e) => errors.push(e) });
    expect(await w.mediator.query(GetOrder.create({ id: '1' }))).toEqual({ id: '1', status: 'placed' });
    expect(String(errors[0])).toContain('corrupt');
  });

  it('fails the dispatch with a rejected promise, never a throw, when the key cannot be built', async () => {
    const seen: string[] = [];
    const outer = (m: never, c: never, next: (m: never, c: never) => Promise<unknown>) => {
      try {
        return next(m, c).catch((error: unknown) => {
          seen.push('rejected');
          throw error;
        });
      } catch (error) {
        seen.push('thrown');
        throw error;
      }
    };
    const cache = queryCache({
      store: createInMemoryQueryCacheStore(),
      queries: [{ query: GetOrder, ttlMs: 1000 }],
    });
    const mediator = createMediator({
      behaviors: [outer as never, cache],
      handlers: [handle(GetOrder, () => null)],
    });
    await expect(mediator.query(GetOrder.create({ id: 1n } as never))).rejects.toThrow(/BigInt/);
    expect(seen).toEqual(['rejected']);
  });

  it('refuses an authorization behavior placed inside the cache', () => {
    const cache = queryCache({
      store: createInMemoryQueryCacheStore(),
      queries: [{ query: GetOrder, ttlMs: 1000 }],
    });
    const build = (behaviors: never[]) =>
      createMediator({ behaviors, handlers: [handle(GetOrder, () => null, { authorize: () => true })] });
    expect(() => build([authorization(), cache] as never[])).not.toThrow();
    let error: unknown;
    try {
      build([cache, authorization()] as never[]);
    } catch (e) {
      error = e;
    }
    expect(isCqrsError(error) && error.code).toBe('CQRS_CONFIGURATION');
  });

  it('evicts tags once a projection applied the event, and from a plain event handler', async () => {
    const outbox = createInMemoryOutboxStore();
    const log = createInMemoryEventStore({ outbox });
    const projections = createInMemoryProjectionStore();
    const store = createInMemoryQueryCacheStore();
    const status = defineDocumentProjection<{ status: string }>({
      name: 'qc-status',
      events: [OrderShipped],
      documentId: (e) => (e.payload as { id: string }).id,
      evolve: () => ({ status: 'shipped' }),
    });
    const cache = queryCache({
      store,
      queries: [{ query: GetOrder, ttlMs: 60_000, tags: (q) => [`order:${q.payload.id}`] }],
    });
    const invalidation = createCacheInvalidation({
      cache,
      rules: [
        {
          event: OrderShipped,
          tags: (e: ReturnType<typeof OrderShipped.create>) => [`order:${e.payload.id}`],
        },
      ],
    });
    let calls = 0;
    const mediator = createMediator({
      behaviors: [cache],
      handlers: [
        handle(GetOrder, async (q) => {
          calls++;
          const doc = (
            await projections.readDocuments(undefined, { name: 'qc-status', version: 1 }, [q.payload.id])
          ).get(q.payload.id);
          return {
            id: q.payload.id,
            status: doc === undefined ? 'placed' : (JSON.parse(doc.doc) as { status: string }).status,
          };
        }),
        on(OrderShipped, (e) => invalidation.onApplied([e])),
      ],
    });
    const runner = createProjectionRunner({
      log,
      store: projections,
      projections: [status],
      onApplied: (events) => invalidation.onApplied(events),
    });
    expect((await mediator.query(GetOrder.create({ id: '7' })))?.status).toBe('placed');
    await outbox.transaction((tx) => outbox.append(tx, [OrderShipped.create({ id: '7' })]));
    expect((await mediator.query(GetOrder.create({ id: '7' })))?.status).toBe('placed');
    await runner.catchUp();
    expect((await mediator.query(GetOrder.create({ id: '7' })))?.status).toBe('shipped');
    expect(calls).toBe(2);
    // Without a projection: an event handler evicts when the event is published in process.
    await mediator.publish(OrderShipped.create({ id: '7' }));
    await mediator.query(GetOrder.create({ id: '7' }));
    expect(calls).toBe(3);
  });

  it('keeps at most maxEntries in memory, dropping the least recently used', async () => {
    const store = createInMemoryQueryCacheStore({ maxEntries: 2 });
    const put = (k: string) => store.set(k, k, { ttlMs: 1000, tags: [], generations: [] });
    await put('a');
    await put('b');
    await store.get('a');
    await put('c');
    const values = [await store.get('a'), await store.get('b'), await store.get('c')].map((h) => h?.value);
    expect(values).toEqual(['a', undefined, 'c']);
    expect(store.size).toBe(2);
  });
});
