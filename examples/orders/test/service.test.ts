import { join } from 'node:path';
import type { SagaProgress } from '@cqrs-ts/saga';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/service/config.ts';
import { mountOperatorConsole } from '../src/service/console.ts';
import type { CheckoutStatus, OrderUpdate, OrderView } from '../src/service/messages.ts';
import { type RunningService, startOrdersService } from '../src/service/service.ts';
import { json, placeOrder, readEvents, tempDir } from './support.ts';

const FINAL = new Set(['shipped', 'rejected', 'cancelled']);

describe('the orders service on its embedded defaults (SQLite, in-memory broker) over loopback HTTP', () => {
  const tmp = tempDir();
  let service: RunningService;
  let url: string;
  beforeAll(async () => {
    const config = loadConfig({
      ORDERS_PORT: '0',
      ORDERS_SQLITE_FILE: join(tmp.dir, 'orders.db'),
      ORDERS_SQLITE_SAGA_FILE: join(tmp.dir, 'sagas.db'),
    });
    service = await startOrdersService(config, {
      roles: new Set(['all']),
      mountConsole: (parts) => mountOperatorConsole(parts, undefined),
    });
    url = service.url!;
  });
  afterAll(async () => {
    await service?.stop();
    tmp.dispose();
  });

  const watchUntilFinal = async (orderId: string) =>
    readEvents<OrderUpdate>(await fetch(`${url}/orders/${orderId}/watch`), (u) =>
      FINAL.has(u.order?.status ?? ''),
    );

  it('places an order, streams its checkout over SSE to shipped, and lists and reads it from the read model', async () => {
    const placed = await placeOrder(url, { customerId: 'c-1', lines: [{ sku: 'BOOK-1', quantity: 2 }] });
    expect(placed.status).toBe(201);
    const { orderId } = (await placed.json()) as { orderId: string };
    const updates = await watchUntilFinal(orderId);
    const last = updates.at(-1)!;
    expect(last.data.order).toMatchObject({ id: orderId, status: 'shipped', totalCents: 3000 });
    expect(last.data.order!.steps).toEqual(['open done', 'reserve-stock done', 'charge done', 'ship done']);
    expect(last.id).toBe(last.data.position);
    // every SSE id is a later position than the one before
    const ids = updates.map((u) => BigInt(u.id!));
    expect(ids).toEqual([...ids].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)));
    expect(new Set(ids).size).toBe(ids.length);

    const got = (await (await fetch(`${url}/orders/${orderId}`)).json()) as OrderView;
    expect(got.status).toBe('shipped');
    const page = (await (await fetch(`${url}/orders?customerId=c-1&page=1&pageSize=10`)).json()) as {
      items: OrderView[];
      total: number;
    };
    expect(page.items.map((o) => o.id)).toContain(orderId);
    // resuming with Last-Event-ID sends nothing at or before it: the next answer is a later change only
    const resumed = await fetch(`${url}/orders/${orderId}/watch`, {
      headers: { 'last-event-id': last.id! },
      signal: AbortSignal.timeout(300),
    });
    await expect(readEvents(resumed, () => true)).rejects.toThrow();
  });

  it("serves the checkout saga's progress: JSON status, SSE of steps and states that ends when it is final, resume by Last-Event-ID", async () => {
    const placed = await placeOrder(url, { customerId: 'c-9', lines: [{ sku: 'LAMP-9', quantity: 1 }] });
    const { orderId } = (await placed.json()) as { orderId: string };
    await watchUntilFinal(orderId);
    const status = (await (await fetch(`${url}/orders/${orderId}/checkout`)).json()) as CheckoutStatus;
    expect(status).toMatchObject({ orderId, status: 'compensated', cursor: 2 });
    const steps = status.steps.map((s) => `${s.action}:${s.stepId}:${s.status}`);
    expect(steps).toEqual([
      'act:open:completed',
      'act:reserve-stock:completed',
      'act:charge:failed',
      'compensate:reserve-stock:completed',
      'compensate:open:completed',
    ]);
    // the stream ends by itself once the saga is final: `done` never stops it early here
    const res = await fetch(`${url}/orders/${orderId}/checkout/watch`);
    expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/);
    const events = await readEvents<SagaProgress>(res, () => false);
    expect(events.filter((e) => e.data.kind === 'step').map((e) => e.id)).toEqual(
      status.steps.map((s) => String(s.seq)),
    );
    expect(events.at(-1)!.data).toMatchObject({ kind: 'state', status: 'compensated' });
    const resumed = await readEvents<SagaProgress>(
      await fetch(`${url}/orders/${orderId}/checkout/watch`, {
        headers: { 'last-event-id': events[2]!.id! },
      }),
      () => false,
    );
    expect(resumed.map((e) => e.id)).toEqual(events.slice(3).map((e) => e.id));
    const missing = await fetch(`${url}/orders/o-none/checkout`);
    expect(missing.status).toBe(404);
    expect(missing.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect((await fetch(`${url}/orders/o-none/checkout/watch`)).status).toBe(404);
  });

  it('a declined payment compensates the checkout in reverse order, visible step by step on the stream', async () => {
    const placed = await placeOrder(url, { customerId: 'c-3', lines: [{ sku: 'LAMP-9', quantity: 1 }] });
    const { orderId } = (await placed.json()) as { orderId: string };
    const updates = await watchUntilFinal(orderId);
    expect(updates.at(-1)!.data.order).toMatchObject({
      status: 'rejected',
      steps: ['open done', 'reserve-stock done', 'reserve-stock compensated', 'open compensated'],
    });
    const stats = await service.parts.storage.stats();
    expect(stats.sagas.compensated).toBeGreaterThanOrEqual(1);
  });

  it('cancelling before shipping compensates the charge; after shipping it is refused with 409', async () => {
    const placed = await placeOrder(url, { customerId: 'c-4', lines: [{ sku: 'MUG-3', quantity: 1 }] });
    const { orderId } = (await placed.json()) as { orderId: string };
    const cancel = await fetch(`${url}/orders/${orderId}/cancel`, {
      method: 'POST',
      headers: json,
      body: '{}',
    });
    // final: shipped, or cancelled with the checkout undone (open is compensated last)
    const final = (
      await readEvents<OrderUpdate>(
        await fetch(`${url}/orders/${orderId}/watch`),
        (u) => u.order?.status === 'shipped' || u.order?.steps.at(-1) === 'open compensated',
      )
    ).at(-1)!.data.order!;
    if (cancel.status === 204) {
      expect(final.status).toBe('cancelled');
      expect(final.steps).toContain('open compensated');
      expect(final.steps).not.toContain('ship done');
    } else {
      expect(cancel.status).toBe(409);
      expect(final.status).toBe('shipped');
    }
    const again = await fetch(`${url}/orders/${orderId}/cancel`, {
      method: 'POST',
      headers: json,
      body: '{}',
    });
    expect(again.status).toBe(409);
    expect((await again.json()) as { detail: string }).toMatchObject({
      detail: `order ${orderId} is ${final.status === 'cancelled' ? 'cancelled' : 'shipped'}`,
    });
  });

  it('an Idempotency-Key replays the first answer and places one order', async () => {
    const body = { customerId: 'c-5', lines: [{ sku: 'BOOK-1', quantity: 1 }] };
    const first = await placeOrder(url, body, { 'idempotency-key': 'checkout-c5-1' });
    const again = await placeOrder(url, body, { 'idempotency-key': 'checkout-c5-1' });
    expect(again.status).toBe(201);
    expect(again.headers.get('idempotency-replayed')).toBe('true');
    expect(await again.json()).toEqual(await first.json());
    const other = await placeOrder(
      url,
      { ...body, lines: [{ sku: 'PEN-2', quantity: 1 }] },
      { 'idempotency-key': 'checkout-c5-1' },
    );
    expect(other.status).toBe(422);
  });

  it('answers problem details for bad input and unknown orders, and serves the OpenAPI document', async () => {
    const invalid = await placeOrder(url, { customerId: '', lines: [{ sku: 'NOPE', quantity: 0 }] });
    expect(invalid.status).toBe(400);
    expect(((await invalid.json()) as { errors: unknown[] }).errors.length).toBeGreaterThanOrEqual(3);
    expect((await fetch(`${url}/orders/o-missing`)).status).toBe(404);
    expect(
      (await fetch(`${url}/orders/o-missing/cancel`, { method: 'POST', headers: json, body: '{}' })).status,
    ).toBe(404);
    const doc = (await (await fetch(`${url}/openapi.json`)).json()) as { paths: Record<string, unknown> };
    expect(Object.keys(doc.paths).sort()).toEqual([
      '/orders',
      '/orders/{orderId}',
      '/orders/{orderId}/cancel',
      '/orders/{orderId}/checkout',
      '/orders/{orderId}/checkout/watch',
      '/orders/{orderId}/watch',
    ]);
  });

  it('serves readiness of every component and the operator console (read-only without a token)', async () => {
    const ready = await fetch(`${url}/health/ready`);
    expect(ready.status).toBe(200);
    const report = (await ready.json()) as { checks: Record<string, unknown> };
    expect(Object.keys(report.checks).sort()).toEqual([
      'checkout',
      'event-loop',
      'outbox-relay',
      'process',
      'projection:order-view',
      'sqlite',
    ]);
    const page = await fetch(`${url}/console`);
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('orders console');
    const outbox = (await (await fetch(`${url}/console/api/outbox`)).json()) as { dead: number };
    expect(outbox.dead).toBe(0);
  });
});

describe('the cached order lookup', () => {
  it('is evicted when the read model applies the order’s events (no consumer: the order waits in placed)', async () => {
    const tmp = tempDir();
    const config = loadConfig({
      ORDERS_PORT: '0',
      ORDERS_SQLITE_FILE: join(tmp.dir, 'orders.db'),
      ORDERS_SQLITE_SAGA_FILE: join(tmp.dir, 'sagas.db'),
    });
    const service = await startOrdersService(config, { roles: new Set(['api', 'relay', 'projections']) });
    const url = service.url!;
    try {
      const placed = await placeOrder(url, { customerId: 'c-2', lines: [{ sku: 'PEN-2', quantity: 1 }] });
      const { orderId } = (await placed.json()) as { orderId: string };
      await readEvents<OrderUpdate>(await fetch(`${url}/orders/${orderId}/watch`), (u) => u.order !== null);
      const get = async () => (await (await fetch(`${url}/orders/${orderId}`)).json()) as OrderView;
      expect((await get()).status).toBe('placed'); // cached for 60 s
      await fetch(`${url}/orders/${orderId}/cancel`, { method: 'POST', headers: json, body: '{}' });
      await readEvents<OrderUpdate>(
        await fetch(`${url}/orders/${orderId}/watch`),
        (u) => u.order?.status === 'cancelled',
      );
      expect((await get()).status).toBe('cancelled'); // only the eviction explains the fresh answer
    } finally {
      await service.stop();
      tmp.dispose();
    }
  });
});
