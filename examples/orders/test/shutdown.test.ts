import { join } from 'node:path';
import { expect, it } from 'vitest';
import type { OrderUpdate } from '../src/service/messages.ts';
import { placeOrder, readEvents, startProcess, tempDir } from './support.ts';

const FINAL = new Set(['shipped', 'rejected', 'cancelled']);

it('SIGTERM stops taking requests, finishes the ones in flight, stops the loops and exits; a restart finishes every accepted order', async () => {
  const tmp = tempDir();
  const env = {
    ORDERS_PORT: '0',
    ORDERS_SQLITE_FILE: join(tmp.dir, 'orders.db'),
    ORDERS_SQLITE_SAGA_FILE: join(tmp.dir, 'sagas.db'),
    ORDERS_SAGA_RECOVER_EVERY_MS: '200',
  };
  try {
    const first = startProcess([], env);
    const url = (await first.ready)!;
    const watched = (await (
      await placeOrder(url, { customerId: 'w', lines: [{ sku: 'PEN-2', quantity: 1 }] })
    ).json()) as {
      orderId: string;
    };
    // a live stream stays open until the service stops
    const stream = readEvents<OrderUpdate>(
      await fetch(`${url}/orders/${watched.orderId}/watch`),
      () => false,
    );

    const attempts = Array.from({ length: 60 }, (_, i) =>
      placeOrder(url, {
        customerId: `c-${i}`,
        lines: [{ sku: i % 5 === 0 ? 'LAMP-9' : 'BOOK-1', quantity: 1 }],
      }).then(
        async (r) => ({ status: r.status, body: (await r.json()) as { orderId?: string } }),
        (error: unknown) => ({ status: 0, body: {}, error }),
      ),
    );
    await Promise.race(attempts); // the first answer came: the others are in flight or on their way
    first.child.kill('SIGTERM');
    const results = await Promise.all(attempts);
    const exit = await first.exited;
    expect(exit).toEqual({ code: 0, signal: null }); // exited by itself: no loop or connection left open
    expect(first.output()).toMatch(/SIGTERM: stopping[\s\S]*stopped/);
    await stream; // the live stream ended
    // every request got an answer or was refused (503 while closing, or no connection), none failed half-way
    for (const r of results) expect([201, 503, 0]).toContain(r.status);
    const accepted = [
      watched.orderId,
      ...results.filter((r) => r.status === 201).map((r) => r.body.orderId!),
    ];
    expect(accepted.length).toBeGreaterThan(1);
    await expect(fetch(`${url}/orders`)).rejects.toThrow();

    // a restart on the same files: every accepted order reaches the end of its checkout
    const second = startProcess([], env);
    const url2 = (await second.ready)!;
    try {
      for (const orderId of accepted) {
        const updates = await readEvents<OrderUpdate>(await fetch(`${url2}/orders/${orderId}/watch`), (u) =>
          FINAL.has(u.order?.status ?? ''),
        );
        expect(FINAL.has(updates.at(-1)!.data.order!.status)).toBe(true);
      }
    } finally {
      second.child.kill('SIGTERM');
      expect((await second.exited).code).toBe(0);
    }
  } finally {
    tmp.dispose();
  }
}, 60_000);
