/**
 * The long-outage scenario shared by the broker packages' reliability tests and `npm run soak`: a steady flow of
 * events (500/s by default, 200 keys) committed to a Postgres outbox, relayed to the broker and consumed, while the
 * broker is unreachable for `outageMs` (a private instance stopped, or a TCP proxy blocked). It returns what the
 * tests assert (nothing dead, nothing lost, per-key order) and the figures they print (how long the backlog took
 * to drain, beside how long the publisher alone needs to publish as many messages).
 */
import {
  type AnyEvent,
  createOutboxRelay,
  defineEvent,
  type MessageConsumer,
  type MessageConsumerHealth,
  type OutboxRelayHealth,
} from '@cqrs-ts/core';
import { createOutboxEncoder, type MessagePublisher, toOutboxMessages } from '@cqrs-ts/core/spi';
import { createPostgresOutboxStore, migrate } from '@cqrs-ts/postgres';
import type pg from 'pg';
import { expect } from 'vitest';
import { uniqueSuffix, waitFor } from './services.ts';

/** The outage length: `CQRS_OUTAGE_MS` (the soak script sets 300000), else 120 s. */
export const OUTAGE_MS = Number(process.env.CQRS_OUTAGE_MS ?? 120_000);

/** Ordering keys of the flow: a relay batch of 500 holds 2 or 3 events per key, each key's sent after the last. */
const KEYS = 200;

/** A test's time budget: the outage, a drain as long again, and 10 minutes for a slow broker. */
export const OUTAGE_TEST_TIMEOUT_MS = 2 * OUTAGE_MS + 600_000;

export interface OutageFlowOptions {
  /** For table names and the printed line. */
  readonly label: string;
  readonly pool: pg.Pool;
  /** The topic the events go to (the broker side routes it to what `consume` reads). */
  readonly topic: string;
  /** The publisher the relay uses: it goes through the path that the outage cuts. */
  readonly publisher: MessagePublisher;
  /** Starts a consumer (through the same path) that calls `handle` for each delivered event. */
  consume(handle: (event: AnyEvent) => void): Promise<MessageConsumer>;
  /** Makes the broker unreachable for the relay and the consumer. */
  down(): Promise<void>;
  /** Makes it reachable again; resolves once it is. */
  up(): Promise<void>;
  /** A publisher for the baseline (not through the outbox), on the recovered path. */
  readonly direct: MessagePublisher;
  readonly outageMs?: number;
  readonly ratePerSecond?: number;
}

export interface OutageFlowResult {
  readonly appended: number;
  /** Distinct events consumed. */
  readonly consumed: number;
  /** Deliveries of an event already consumed (at least once: redeliveries after the connection loss). */
  readonly redeliveries: number;
  /** Events consumed before an earlier event of their key. */
  readonly outOfOrder: number;
  /** Appended events never consumed. */
  readonly missing: number;
  /** Events appended but not consumed when the broker came back. */
  readonly backlogAtRecovery: number;
  /** From the broker's return until the relay published every event appended before it, ms. */
  readonly publishDrainMs: number;
  /** From the broker's return until every event appended before it was consumed, ms. */
  readonly drainMs: number;
  /** The direct publisher's time for as many messages as `backlogAtRecovery`, ms. */
  readonly directMs: number;
  readonly relay: OutboxRelayHealth;
  readonly consumer: MessageConsumerHealth;
  readonly downMs: number;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, Math.max(0, ms)));

export async function runOutageFlow(o: OutageFlowOptions): Promise<OutageFlowResult> {
  const outageMs = o.outageMs ?? OUTAGE_MS;
  const rate = o.ratePerSecond ?? 500;
  const Ticked = defineEvent('outage.ticked', {
    topic: o.topic,
    key: (p: { k: string; n: number }) => p.k,
  }).withPayload<{ k: string; n: number }>();
  const sfx = `${o.label}_${uniqueSuffix}`.toLowerCase().replace(/[^a-z0-9_]/g, '_');
  const tables = { outbox: `outage_ob_${sfx}`, inbox: `outage_ib_${sfx}` };
  await migrate(o.pool, { tables });
  const store = createPostgresOutboxStore({ client: o.pool, tables, notifyChannel: false });
  const published = new Set<string>();
  // the relay's publish calls since the last progress line: how many, how long the slowest took, rows not ok
  const calls = { count: 0, maxMs: 0, notOk: 0 };
  const onAvailable = o.publisher.onAvailable?.bind(o.publisher);
  const publisher: MessagePublisher = {
    capabilities: o.publisher.capabilities,
    ...(onAvailable === undefined ? {} : { onAvailable }),
    async publish(messages, options) {
      const t0 = performance.now();
      const results = await o.publisher.publish(messages, options);
      calls.count++;
      calls.maxMs = Math.max(calls.maxMs, performance.now() - t0);
      for (let i = 0; i < results.length; i++) {
        if (results[i]!.ok) published.add(messages[i]!.headers.id!);
        else calls.notOk++;
      }
      return results;
    },
  };
  const relay = createOutboxRelay({ store, publisher, batchSize: 500, pollIntervalMs: 50 });

  const appendedAt: string[] = [];
  const consumed = new Set<string>();
  const lastOfKey = new Map<string, number>();
  let redeliveries = 0;
  let outOfOrder = 0;
  const consumer = await o.consume((event) => {
    const id = event.metadata.requestId;
    if (consumed.has(id)) {
      redeliveries++;
      return;
    }
    const { k, n } = event.payload as { k: string; n: number };
    if (n < (lastOfKey.get(k) ?? -1)) outOfOrder++;
    lastOfKey.set(k, n);
    consumed.add(id);
  });

  // 10 events per transaction, on a fixed schedule (no drift): `rate` events per second.
  let producing = true;
  const perTick = 10;
  const tickMs = (1000 * perTick) / rate;
  const next = new Map<string, number>();
  let n = 0;
  const producer = (async () => {
    const t0 = performance.now();
    for (let tick = 0; producing; tick++) {
      const events = Array.from({ length: perTick }, () => {
        const k = `k${n++ % KEYS}`;
        const seq = next.get(k) ?? 0;
        next.set(k, seq + 1);
        return Ticked.create({ k, n: seq }) as AnyEvent;
      });
      const c = await o.pool.connect();
      try {
        await c.query('BEGIN');
        await store.append(c, events);
        await c.query('COMMIT');
      } catch (error) {
        await c.query('ROLLBACK').catch(() => {});
        throw error;
      } finally {
        c.release();
      }
      for (const e of events) appendedAt.push(e.metadata.requestId);
      await sleep(t0 + (tick + 1) * tickMs - performance.now());
    }
  })();

  let isDown = false;
  let downMs = 0;
  let drainMs = 0;
  let publishDrainMs = 0;
  let backlogAtRecovery = 0;
  relay.start();
  // progress on stderr every 10 s: where a stuck drain stands
  const progress = setInterval(() => {
    const window = { ...calls };
    Object.assign(calls, { count: 0, maxMs: 0, notOk: 0 });
    void relay.health().then((h) => {
      const c = consumer.health();
      const errorAge =
        h.lastErrorAt === undefined ? '' : ` (${((Date.now() - h.lastErrorAt) / 1000).toFixed(0)} s ago)`;
      const own = (o.publisher as { health?: () => unknown }).health?.();
      console.error(
        `[${o.label}] appended ${appendedAt.length} published ${published.size} consumed ${consumed.size}; relay circuit ${h.circuit} backlog ${h.backlog} dead ${h.dead} lastError ${h.lastError}${errorAge}; publish calls ${window.count} (slowest ${window.maxMs.toFixed(0)} ms, ${window.notOk} rows not ok)${own === undefined ? '' : ` publisher ${JSON.stringify(own)}`}; consumer connected ${c.connected} paused ${c.paused} inFlight ${c.inFlight} reconnects ${c.reconnects} lastError ${c.lastError}`,
      );
    });
  }, 10_000);
  try {
    await waitFor(() => consumed.size >= rate * 2, 60_000, 'the flow before the outage');
    await o.down();
    isDown = true;
    const downAt = performance.now();
    await sleep(outageMs);
    await o.up();
    isDown = false;
    downMs = performance.now() - downAt;
    const upAt = performance.now();
    const before = appendedAt.slice();
    backlogAtRecovery = before.filter((id) => !consumed.has(id)).length;
    let sent = 0; // events go out of append order across keys: skip the prefix known done
    await waitFor(
      () => {
        while (sent < before.length && published.has(before[sent]!)) sent++;
        return sent === before.length;
      },
      600_000,
      'the relay to publish the backlog',
    );
    publishDrainMs = performance.now() - upAt;
    let drained = 0;
    await waitFor(
      () => {
        while (drained < before.length && consumed.has(before[drained]!)) drained++;
        return drained === before.length;
      },
      600_000,
      'the backlog to drain',
    );
    drainMs = performance.now() - upAt;
    await sleep(2000); // keep the flow running a little after the drain
    producing = false;
    await producer;
    await waitFor(() => appendedAt.every((id) => consumed.has(id)), 600_000, 'every event consumed');
  } finally {
    clearInterval(progress);
    producing = false;
    await producer.catch(() => {});
    if (isDown) await o.up().catch(() => {});
    await relay.stop();
    await consumer.stop();
  }
  const relayHealth = await relay.health();
  const consumerHealth = consumer.health();
  await o.pool.query(
    `DROP TABLE IF EXISTS ${tables.outbox}, ${tables.outbox}_archive, ${tables.outbox}_stream, ${tables.inbox}`,
  );

  // Baseline: the same number of messages through the publisher alone, in the relay's batch size.
  const encoder = createOutboxEncoder({ source: 'outage-baseline' });
  const messages = toOutboxMessages(
    encoder.encode(
      Array.from({ length: Math.max(1, backlogAtRecovery) }, (_, i) =>
        Ticked.create({ k: `b${i % KEYS}`, n: i }),
      ),
      Date.now(),
    ),
  );
  const t0 = performance.now();
  for (let i = 0; i < messages.length; i += 100) {
    const results = await o.direct.publish(messages.slice(i, i + 100));
    if (results.some((r) => !r.ok)) throw new Error(`baseline publish failed: ${JSON.stringify(results)}`);
  }
  const directMs = performance.now() - t0;

  return {
    appended: appendedAt.length,
    consumed: consumed.size,
    redeliveries,
    outOfOrder,
    missing: appendedAt.filter((id) => !consumed.has(id)).length,
    backlogAtRecovery,
    publishDrainMs,
    drainMs,
    directMs,
    relay: relayHealth,
    consumer: consumerHealth,
    downMs,
  };
}

/** One line of figures for the test log (and the soak note). */
export function describeOutage(label: string, r: OutageFlowResult): string {
  return (
    `${label} outage ${(r.downMs / 1000).toFixed(0)} s: ${r.appended} events, ${r.consumed} consumed ` +
    `(${r.redeliveries} redeliveries), ${r.relay.dead} dead, ${r.consumer.deadLettered} dead-lettered, ` +
    `${r.outOfOrder} out of order; backlog ${r.backlogAtRecovery}: published by the relay in ` +
    `${(r.publishDrainMs / 1000).toFixed(1)} s, consumed in ${(r.drainMs / 1000).toFixed(1)} s after the broker ` +
    `returned (the publisher alone publishes as many in ${(r.directMs / 1000).toFixed(1)} s: relay ` +
    `${(r.publishDrainMs / r.directMs).toFixed(2)}x, end to end ${(r.drainMs / r.directMs).toFixed(2)}x)`
  );
}

/** What every broker's outage test asserts: nothing lost, dead or out of key order, and the flow went on meanwhile. */
export function expectOutageSurvived(r: OutageFlowResult, outageMs = OUTAGE_MS): void {
  expect(r.missing).toBe(0);
  expect(r.outOfOrder).toBe(0);
  expect(r.relay.dead).toBe(0);
  expect(r.relay.quarantined).toBe(0);
  expect(r.consumer.deadLettered).toBe(0);
  expect(r.relay.circuit).toBe('closed');
  expect(r.backlogAtRecovery).toBeGreaterThan(outageMs / 4); // events were committed during the outage
}
