/**
 * Load against the orders service on Postgres + NATS with every background process running: autocannon places
 * orders over loopback for a bounded time (ORDERS_LOAD_SECONDS, 8 s in the test run, 30 s in `npm run soak`);
 * afterwards every order is projected, every saga completed or compensated, and no effect happened twice (no
 * double charge, no stock held by an order that did not ship, no step applied twice). The second run SIGKILLs
 * the relay and the consumer twice during the load and restarts them.
 */
import autocannon from 'autocannon';
import { afterEach, describe, expect, it } from 'vitest';
import { type Cluster, clusterAvailable, createCluster, waitSettled } from './cluster.ts';

const SECONDS = Number(process.env.ORDERS_LOAD_SECONDS ?? 8);
/**
 * How long the backlog may take to settle after the load: it grows with the load (the sagas run at about 100 per
 * second here, behind orders taken at 300-400 per second); 30 s of load with two kills took 124 s.
 */
const SETTLE_MS = Math.max(120_000, SECONDS * 10_000);
/** Each test: the cluster's start, the load, the settling. */
const TEST_MS = Math.max(240_000, SETTLE_MS + SECONDS * 1000 + 60_000);
const CONNECTIONS = 16;

const body = (sku: string, i: number) =>
  JSON.stringify({ customerId: `c-${i}`, lines: [{ sku, quantity: 1 }], address: 'Main St 1' });
// one order in ten is declined at the charge step and compensated
const REQUESTS = Array.from({ length: 10 }, (_, i) => ({
  method: 'POST' as const,
  path: '/orders',
  headers: { 'content-type': 'application/json' },
  body: body(i === 9 ? 'LAMP-9' : ['BOOK-1', 'MUG-3', 'PEN-2'][i % 3]!, i),
}));

async function load(url: string, seconds: number) {
  const result = await autocannon({ url, connections: CONNECTIONS, duration: seconds, requests: REQUESTS });
  return {
    ok: result['2xx'],
    other: result.non2xx + result.errors + result.timeouts,
    perSecond: Math.round(result['2xx'] / seconds),
    p99: result.latency.p99,
  };
}

describe.skipIf(!clusterAvailable)(
  `orders service under load for ${SECONDS} s (Postgres + NATS, one process per role)`,
  () => {
    let cluster: Cluster | undefined;
    afterEach(async () => {
      await cluster?.dispose();
      cluster = undefined;
    });

    it(
      `load for ${SECONDS} s: every order projected, every saga ended, no effect lost or doubled`,
      async () => {
        cluster = await createCluster();
        await cluster.start();
        const run = await load(cluster.url, SECONDS);
        const started = Date.now();
        const report = await waitSettled(cluster.pool, SETTLE_MS);
        console.log(
          `load ${SECONDS} s: ${run.ok} orders, ${run.perSecond} orders/s, p99 ${run.p99} ms, other answers ${run.other}; settled ${Date.now() - started} ms after; sagas ${JSON.stringify(report.sagas)}`,
        );
        expect(run.other).toBe(0);
        // requests still in flight when the time is up may have committed without autocannon counting the answer
        expect(report.orders).toBeGreaterThanOrEqual(run.ok);
        expect(report.orders).toBeLessThanOrEqual(run.ok + CONNECTIONS);
        expect(report.problems).toEqual([]);
        expect(report.sagas.compensated).toBeGreaterThan(0);
      },
      TEST_MS,
    );

    it(
      `load for ${SECONDS} s with the relay and the consumer SIGKILLed and restarted twice: still nothing lost or doubled`,
      async () => {
        cluster = await createCluster();
        await cluster.start();
        const c = cluster;
        const running = load(c.url, SECONDS);
        const kills = (async () => {
          for (const at of [SECONDS / 3, (2 * SECONDS) / 3]) {
            await new Promise((resolve) =>
              setTimeout(resolve, at * 1000 - (at === SECONDS / 3 ? 0 : (SECONDS / 3) * 1000)),
            );
            await Promise.all([c.restart('relay'), c.restart('consumer')]);
          }
        })();
        const [run] = await Promise.all([running, kills]);
        const started = Date.now();
        const report = await waitSettled(c.pool, SETTLE_MS);
        console.log(
          `load ${SECONDS} s with 2 kills: ${run.ok} orders, ${run.perSecond} orders/s, p99 ${run.p99} ms, other answers ${run.other}; settled ${Date.now() - started} ms after; sagas ${JSON.stringify(report.sagas)}`,
        );
        expect(run.other).toBe(0);
        // requests still in flight when the time is up may have committed without autocannon counting the answer
        expect(report.orders).toBeGreaterThanOrEqual(run.ok);
        expect(report.orders).toBeLessThanOrEqual(run.ok + CONNECTIONS);
        expect(report.problems).toEqual([]);
      },
      TEST_MS,
    );
  },
);
