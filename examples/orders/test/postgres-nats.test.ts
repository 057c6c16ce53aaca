import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { OrderUpdate } from '../src/service/messages.ts';
import { type Cluster, clusterAvailable, createCluster, waitSettled } from './cluster.ts';
import { json, placeOrder, readEvents } from './support.ts';

describe.skipIf(!clusterAvailable)('the orders service on Postgres + NATS, one process per role', () => {
  let cluster: Cluster;
  beforeAll(async () => {
    cluster = await createCluster();
    await cluster.start();
  }, 60_000);
  afterAll(async () => {
    await cluster?.dispose();
  });

  it('places, cancels and checks out orders across the api, relay, consumer, saga-recovery and projections processes', async () => {
    const { url } = cluster;
    const skus = ['BOOK-1', 'MUG-3', 'PEN-2', 'LAMP-9'];
    const placed = await Promise.all(
      Array.from({ length: 24 }, (_, i) =>
        placeOrder(url, { customerId: `c-${i % 3}`, lines: [{ sku: skus[i % 4]!, quantity: 1 + (i % 2) }] }),
      ),
    );
    expect(placed.map((r) => r.status)).toEqual(placed.map(() => 201));
    const ids = await Promise.all(placed.map(async (r) => ((await r.json()) as { orderId: string }).orderId));
    // a live stream in the api process (which polls the read model: the projection runs elsewhere)
    const watched = await readEvents<OrderUpdate>(await fetch(`${url}/orders/${ids[3]}/watch`), (u) =>
      ['shipped', 'rejected'].includes(u.order?.status ?? ''),
    );
    expect(watched.at(-1)!.data.order!.status).toBe('rejected'); // LAMP-9: card declined
    const cancel = await fetch(`${url}/orders/${ids[0]}/cancel`, {
      method: 'POST',
      headers: json,
      body: '{}',
    });
    expect([204, 409]).toContain(cancel.status);

    const report = await waitSettled(cluster.pool, 30_000);
    expect(report.problems).toEqual([]);
    expect(report.orders).toBe(24);
    expect((report.sagas.completed ?? 0) + (report.sagas.compensated ?? 0)).toBe(24);
    expect(report.sagas.compensated).toBeGreaterThanOrEqual(6);
    const page = (await (await fetch(`${url}/orders?page=1&pageSize=100`)).json()) as { total: number };
    expect(page.total).toBe(24);

    const exits = await cluster.stop();
    for (const e of exits) expect({ role: e.role, code: e.code }).toEqual({ role: e.role, code: 0 });
  }, 90_000);
});
