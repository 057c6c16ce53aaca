/**
 * Contract of the outbox storage port (`OutboxStore` of `@cqrs-ts/core/spi`), driven through the real relay
 * and the in-memory broker: transactional append, per-key order under failures and concurrent relays, leases,
 * backoff and dead letters, retention, compression, typed errors. Both relay modes run (`transaction` only
 * when the store has `processLocked`).
 * @module
 */
import {
  type AnyEvent,
  createInMemoryBroker,
  createOutboxRelay,
  defineEvent,
  isCqrsError,
} from '@cqrs-ts/core';
import type { OutboxEncoderOptions, OutboxRecord, OutboxStore } from '@cqrs-ts/core/spi';
import { describe, expect } from 'vitest';
import { waitFor } from '../wait-for.ts';
import { describeHarness, type HarnessTest } from './harness.ts';
import { describeOutboxOutageCases, type OutboxOutageHarness } from './outbox-outage.contract.ts';

/** What a storage adapter provides to run {@link describeOutboxStoreContract}. */
export interface OutboxStoreHarness<TTx> extends OutboxOutageHarness<TTx> {
  /** A store over the harness's tables, with these encoder options. */
  store(options?: OutboxEncoderOptions): OutboxStore<TTx>;
  /** Runs `fn` in a transaction and commits. */
  tx<T>(fn: (tx: TTx) => Promise<T>): Promise<T>;
  /** Runs `fn` in a transaction, then rolls back. */
  rollback(fn: (tx: TTx) => Promise<void>): Promise<void>;
  /** Runs `fn` with a transaction handle that has already been committed/released. */
  withClosedTx?: ((fn: (tx: TTx) => Promise<void>) => Promise<void>) | undefined;
  /** A store whose tables do not exist. */
  missingTableStore?(): OutboxStore<TTx>;
  /** Rows of the outbox table, by seq (status, attempts, encoding). */
  rows(): Promise<readonly OutboxRecord[]>;
  /** Deletes every row (between tests). */
  reset(): Promise<void>;
  close(): Promise<void>;
}

const OrderPlaced = defineEvent('orders.order-placed', {
  topic: 'orders',
  key: (p: { orderId: string; n: number; blob?: string }) => p.orderId,
}).withPayload<{ orderId: string; n: number; blob?: string }>();

const events = (count: number, keys = 5): AnyEvent[] =>
  Array.from({ length: count }, (_, n) => OrderPlaced.create({ orderId: `o${n % keys}`, n }) as AnyEvent);

const bodyOf = (m: { body: Uint8Array }) => ({
  payload: JSON.parse(new TextDecoder().decode(m.body)) as { orderId: string; n: number },
});

/**
 * Registers the outbox store contract for one adapter. `setup` runs once before the suite (return `undefined`
 * to skip it, e.g. when the database is unreachable); `reset` runs before each test, `close` after the suite.
 * @example
 * describeOutboxStoreContract('in-memory', async () => harness);
 */
export function describeOutboxStoreContract<TTx>(
  name: string,
  setup: () => Promise<OutboxStoreHarness<TTx> | undefined>,
): void {
  describeHarness(`${name} outbox contract`, setup, (test) => {
    for (const mode of ['lease', 'transaction'] as const) describeMode(test, mode);
  });
}

function describeMode<TTx>(test: HarnessTest<OutboxStoreHarness<TTx>>, mode: 'lease' | 'transaction'): void {
  const relayOf = (options: Parameters<typeof createOutboxRelay>[0]) =>
    createOutboxRelay({ mode, ...options });
  describe(`(${mode} relay)`, async () => {
    describeOutboxOutageCases(test, mode);
    const when = (h: OutboxStoreHarness<TTx>) =>
      mode === 'lease' || typeof h.store().processLocked === 'function';
    const run = (title: string, fn: (h: OutboxStoreHarness<TTx>) => Promise<void>, timeout?: number) =>
      test(title, fn, timeout === undefined ? { when } : { when, timeout });

    run('an append commits with the business transaction and a rollback leaves no row', async (h) => {
      const store = h.store();
      await h.tx((tx) => store.append(tx, events(3)));
      await h.rollback((tx) => store.append(tx, events(2)));
      const rows = await h.rows();
      expect(rows).toHaveLength(3);
      expect(rows.every((r) => r.status === 'pending' && r.attempts === 0)).toBe(true);
      expect(rows.map((r) => r.seq)).toEqual([...rows.map((r) => r.seq)].sort((a, b) => a - b));
    });

    run('several relays at once publish every event exactly once in the normal case', async (h) => {
      const store = h.store();
      const all = events(300, 30);
      for (let i = 0; i < all.length; i += 50) await h.tx((tx) => store.append(tx, all.slice(i, i + 50)));
      const broker = createInMemoryBroker();
      const seen = new Map<string, number>();
      broker.subscribe('orders', (m) => {
        seen.set(m.id, (seen.get(m.id) ?? 0) + 1);
      });
      const relays = [1, 2, 3].map((i) =>
        relayOf({ store, publisher: broker, relayId: `r${i}`, batchSize: 17, leaseMs: 60_000 }),
      );
      await Promise.all(
        relays.map(async (r) => {
          for (let i = 0; i < 200 && seen.size < all.length; i++) await r.runOnce();
        }),
      );
      expect(seen.size).toBe(all.length);
      expect([...seen.values()].filter((n) => n > 1)).toEqual([]);
      const rows = await h.rows();
      expect(rows.every((r) => r.status === 'published')).toBe(true);
    });

    for (const ordered of [true, false]) {
      run(
        `after a failed publish the later events of its key wait; other keys flow (${ordered ? 'ordered' : 'unordered'} publisher)`,
        async (h) => {
          const store = h.store();
          const mk = (orderId: string, n: number) => OrderPlaced.create({ orderId, n }) as AnyEvent;
          await h.tx((tx) => store.append(tx, [mk('k', 1), mk('j', 1), mk('k', 2), mk('k', 3), mk('j', 2)]));
          const broker = createInMemoryBroker();
          const publisher = ordered
            ? broker
            : { capabilities: { preservesKeyOrder: false }, publish: broker.publish.bind(broker) };
          broker.failWhen((m) => {
            const p = bodyOf(m).payload;
            return p.orderId === 'k' && p.n === 1;
          });
          const got: string[] = [];
          broker.subscribe('orders', (m) => {
            const p = bodyOf(m).payload;
            got.push(`${p.orderId}${p.n}`);
          });
          const result = await relayOf({ store, publisher, batchSize: 10 }).runOnce();
          expect(got).toEqual(['j1', 'j2']);
          expect(result).toMatchObject({ published: 2, failed: 1 });
          const rows = await h.rows();
          const byName = (name: string) =>
            rows.find((r) => {
              const p = JSON.parse(new TextDecoder().decode(r.payload)) as { orderId: string; n: number };
              return `${p.orderId}${p.n}` === name;
            })!;
          expect(byName('k1')).toMatchObject({ status: 'pending', attempts: 1 });
          expect(byName('k2')).toMatchObject({ status: 'pending', attempts: 0 });
          expect(byName('k3')).toMatchObject({ status: 'pending', attempts: 0 });
          expect(byName('j2')).toMatchObject({ status: 'published' });
        },
      );
    }

    run('keeps per-key order when publishes fail at random', async (h) => {
      const store = h.store();
      await h.tx((tx) => store.append(tx, events(120, 4)));
      const broker = createInMemoryBroker();
      let seed = 7;
      const random = () => {
        seed = (seed * 1103515245 + 12345) % 2147483648;
        return seed / 2147483648;
      };
      broker.failWhen(() => random() < 0.3);
      const firstSeen: { key: string; n: number }[] = [];
      const delivered = new Set<string>();
      broker.subscribe('orders', (m) => {
        if (delivered.has(m.id)) return;
        delivered.add(m.id);
        const b = bodyOf(m);
        firstSeen.push({ key: b.payload.orderId, n: b.payload.n });
      });
      let clock = Date.now();
      const relays = ['a', 'b'].map((id) =>
        relayOf({
          store,
          publisher: broker,
          relayId: id,
          batchSize: 25,
          maxAttempts: 1000,
          backoff: { initialMs: 1, maxMs: 1, jitter: 'none' },
          now: () => clock,
        }),
      );
      for (let i = 0; i < 500 && delivered.size < 120; i++) {
        clock += 10;
        await Promise.all(relays.map((r) => r.runOnce()));
      }
      expect(delivered.size).toBe(120);
      const lastByKey = new Map<string, number>();
      for (const { key, n } of firstSeen) {
        expect(n).toBeGreaterThan(lastByKey.get(key) ?? -1);
        lastByKey.set(key, n);
      }
    });

    run(
      'retries with backoff, then moves to dead with the last error; dead letters can be replayed and deleted',
      async (h) => {
        const store = h.store();
        await h.tx((tx) => store.append(tx, events(2, 2)));
        const broker = createInMemoryBroker();
        broker.failWhen(() => true);
        let clock = Date.now();
        const relay = relayOf({
          store,
          publisher: broker,
          maxAttempts: 3,
          backoff: { initialMs: 1000, factor: 2, jitter: 'none' },
          now: () => clock,
        });
        expect((await relay.runOnce()).failed).toBe(2);
        expect((await relay.runOnce()).claimed).toBe(0); // backing off
        clock += 1001;
        expect((await relay.runOnce()).failed).toBe(2);
        clock += 2001;
        await relay.runOnce();
        const dead = await store.listDeadLetters();
        expect(dead).toHaveLength(2);
        expect(dead[0]!.attempts).toBe(3);
        expect(dead[0]!.lastError).toContain('injected failure');
        expect((await relay.health()).dead).toBe(2);
        broker.failWhen(undefined);
        expect(await store.replayDeadLetters([dead[0]!.id], clock)).toBe(1);
        expect((await relay.runOnce()).published).toBe(1);
        expect(await store.deleteDeadLetters([dead[1]!.id, dead[0]!.id])).toBe(1);
        const rows = await h.rows();
        expect(rows.map((r) => r.status)).toEqual(['published']);
      },
    );

    if (mode === 'lease')
      run(
        'publishedCounts counts published records per window (throughput), when the store has it',
        async (h) => {
          const store = h.store();
          if (store.publishedCounts === undefined) return;
          await h.tx((tx) => store.append(tx, events(5, 5)));
          const ids = (await h.rows()).map((r) => r.id);
          const t = 1_000_000;
          await store.markPublished(ids.slice(0, 2), t + 10); // window 0
          await store.markPublished(ids.slice(2, 3), t + 1999); // window 1
          await store.markPublished(ids.slice(3, 4), t + 3000); // window 3 (outside 3 windows)
          expect(await store.publishedCounts({ since: t, bucketMs: 1000, buckets: 3 })).toEqual([2, 1, 0]);
          expect(await store.publishedCounts({ since: t, bucketMs: 1000, buckets: 4 })).toEqual([2, 1, 0, 1]);
          expect(await store.publishedCounts({ since: t + 5000, bucketMs: 1000, buckets: 2 })).toEqual([
            0, 0,
          ]);
        },
      );

    run('recovers rows whose lease expired (a crashed relay)', async (h) => {
      const store = h.store();
      await h.tx((tx) => store.append(tx, events(3, 3)));
      const t = Date.now();
      const a = await store.claimBatch({ relayId: 'crashed', limit: 10, leaseMs: 1000, now: t });
      expect(a).toHaveLength(3);
      expect(await store.claimBatch({ relayId: 'b', limit: 10, leaseMs: 1000, now: t + 500 })).toHaveLength(
        0,
      );
      const b = await store.claimBatch({ relayId: 'b', limit: 10, leaseMs: 1000, now: t + 1001 });
      expect(b.map((r) => r.id)).toEqual(a.map((r) => r.id));
      expect(b[0]!.claimedBy).toBe('b');
    });

    run('claims only the head of each key while earlier rows are leased elsewhere', async (h) => {
      const store = h.store();
      await h.tx((tx) => store.append(tx, events(6, 2))); // keys o0,o1,o0,o1,o0,o1
      const t = Date.now();
      const a = await store.claimBatch({ relayId: 'a', limit: 1, leaseMs: 10_000, now: t });
      expect(a.map((r) => r.key)).toEqual(['o0']);
      const b = await store.claimBatch({ relayId: 'b', limit: 10, leaseMs: 10_000, now: t });
      expect(b.map((r) => r.key)).toEqual(['o1', 'o1', 'o1']);
    });

    run('purges published rows older than the retention', async (h) => {
      const store = h.store();
      await h.tx((tx) => store.append(tx, events(4)));
      let clock = Date.now();
      const relay = relayOf({
        store,
        publisher: createInMemoryBroker(),
        retention: { publishedMs: 1000 },
        now: () => clock,
      });
      await relay.runOnce();
      await h.tx((tx) => store.append(tx, events(1)));
      expect(await relay.purgeNow()).toBe(0);
      clock += 1001;
      expect(await relay.purgeNow()).toBe(4);
      expect((await h.rows()).map((r) => r.status)).toEqual(['pending']);
    });

    for (const algorithm of ['gzip', 'br'] as const) {
      run(`round-trips ${algorithm}-compressed payloads`, async (h) => {
        const store = h.store({ compression: { algorithm, thresholdBytes: 1000 } });
        const big = OrderPlaced.create({ orderId: 'x', n: 1, blob: 'abc'.repeat(1000) }) as AnyEvent;
        const small = OrderPlaced.create({ orderId: 'y', n: 2 }) as AnyEvent;
        await h.tx((tx) => store.append(tx, [big, small]));
        const rows = await h.rows();
        expect(rows.map((r) => r.contentEncoding)).toEqual([algorithm, 'identity']);
        expect(rows[0]!.payload.byteLength).toBeLessThan(1000);
        const broker = createInMemoryBroker({ keepRecent: 10 });
        await relayOf({ store, publisher: broker }).runOnce();
        const strip = (e: AnyEvent) =>
          JSON.parse(
            JSON.stringify({ kind: e.kind, type: e.type, payload: e.payload, metadata: e.metadata }),
          );
        expect(broker.recent().map((m) => strip(m.event))).toEqual([big, small].map(strip));
      });
    }

    run('a graceful stop finishes the in-flight batch', async (h) => {
      const store = h.store();
      await h.tx((tx) => store.append(tx, events(5)));
      const broker = createInMemoryBroker();
      let release!: () => void;
      const gate = new Promise<void>((r) => {
        release = r;
      });
      let started = false;
      broker.subscribe('orders', async () => {
        started = true;
        await gate;
      });
      const relay = relayOf({ store, publisher: broker, pollIntervalMs: 10 });
      relay.start();
      await waitFor(() => started, 10_000, 'publish started');
      const stopped = relay.stop();
      release();
      await stopped;
      const rows = await h.rows();
      expect(rows.filter((r) => r.status === 'published')).toHaveLength(5);
      expect(rows.every((r) => r.claimedBy === null)).toBe(true);
    });

    run('health reports backlog, oldest age and stalled when nothing gets published', async (h) => {
      const store = h.store();
      await h.tx((tx) => store.append(tx, events(2)));
      const broker = createInMemoryBroker();
      broker.failWhen(() => true);
      let clock = Date.now() + 5000;
      const relay = relayOf({ store, publisher: broker, stalledAfterMs: 60_000, now: () => clock });
      await relay.runOnce();
      let health = await relay.health();
      expect(health).toMatchObject({ backlog: 2, stalled: false, lastPublishedAt: undefined });
      expect(health.oldestPendingAgeMs).toBeGreaterThanOrEqual(5000);
      clock += 60_000;
      health = await relay.health();
      expect(health.stalled).toBe(true);
      broker.failWhen(undefined);
      clock += 600_000;
      await relay.runOnce();
      health = await relay.health();
      expect(health).toMatchObject({
        backlog: 0,
        stalled: false,
        lastPublishedAt: clock,
        oldestPendingAgeMs: 0,
      });
    });

    run('rejects oversized and non-serializable events with typed errors and writes nothing', async (h) => {
      const store = h.store({ maxPayloadBytes: 2000 });
      const ok = events(1)[0]!;
      const big = OrderPlaced.create({ orderId: 'x', n: 1, blob: 'x'.repeat(3000) }) as AnyEvent;
      const err = await h.tx((tx) => store.append(tx, [ok, big])).catch((e: unknown) => e);
      expect(isCqrsError(err, 'CQRS_PAYLOAD_TOO_LARGE')).toBe(true);
      const bad = { ...ok, payload: { n: 10n } } as AnyEvent;
      const err2 = await h.tx((tx) => store.append(tx, [ok, bad])).catch((e: unknown) => e);
      expect(isCqrsError(err2, 'CQRS_SERIALIZATION')).toBe(true);
      const err3 = await h
        .tx((tx) => store.append(tx, [{ kind: 'command' } as never]))
        .catch((e: unknown) => e);
      expect(isCqrsError(err3, 'CQRS_OUTBOX')).toBe(true);
      expect(await h.rows()).toHaveLength(0);
    });

    run('fails with a typed storage error on a closed transaction or a missing table', async (h) => {
      if (!h.missingTableStore) return;
      const store = h.store();
      if (h.withClosedTx) {
        let err: unknown;
        await h.withClosedTx(async (tx) => {
          err = await store.append(tx, events(2)).catch((e: unknown) => e);
        });
        expect(isCqrsError(err, 'CQRS_STORAGE')).toBe(true);
      }
      const missing = h.missingTableStore();
      const err2 = await h.tx((tx) => missing.append(tx, events(1))).catch((e: unknown) => e);
      expect(isCqrsError(err2, 'CQRS_STORAGE')).toBe(true);
      expect((err2 as { reason: string }).reason).toBe('missing-table');
      const err3 = await missing
        .claimBatch({ relayId: 'x', limit: 1, leaseMs: 1, now: Date.now() })
        .catch((e: unknown) => e);
      expect((err3 as { reason: string }).reason).toBe('missing-table');
      expect(await h.rows()).toHaveLength(0);
    });
  });
}
