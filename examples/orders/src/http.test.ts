import { noopLogger } from '@cqrs-ts/core';
import { describe, expect, it } from 'vitest';
import { frameworks } from '../test/support.ts';
import { ordersHttp } from './http.ts';
import { createOrdersService } from './orders.ts';

describe.each(Object.keys(frameworks))('the orders service over HTTP on %s', (framework) => {
  it('places, reads, lists, exports (SSE) and cancels orders, with problem details and the OpenAPI document', async () => {
    const server = await frameworks[framework]!(ordersHttp(createOrdersService(noopLogger)));
    const { url } = server;
    try {
      const json = { 'content-type': 'application/json' };
      const place = (customerId: string) =>
        fetch(`${url}/orders`, {
          method: 'POST',
          headers: json,
          body: JSON.stringify({ customerId, lines: [{ sku: 'book', quantity: 1 }] }),
        });
      const placed = await place('c-1');
      expect(placed.status).toBe(201);
      const { orderId } = (await placed.json()) as { orderId: string };
      await place('c-1');
      await place('c-2');
      expect(await (await fetch(`${url}/orders/${orderId}`)).json()).toMatchObject({
        id: orderId,
        status: 'placed',
      });
      const page = (await (await fetch(`${url}/orders?page=1&pageSize=2`)).json()) as {
        total: number;
        items: unknown[];
      };
      expect(page).toMatchObject({ total: 3, totalPages: 2 });
      expect(page.items).toHaveLength(2);
      const exported = await (await fetch(`${url}/customers/c-1/orders`)).text();
      expect([...exported.matchAll(/^data: /gm)]).toHaveLength(2);
      const invalid = await fetch(`${url}/orders`, {
        method: 'POST',
        headers: json,
        body: '{"customerId":"","lines":[]}',
      });
      expect(invalid.status).toBe(400);
      expect(((await invalid.json()) as { errors: unknown[] }).errors).toHaveLength(2);
      const cancel = (headers: Record<string, string>) =>
        fetch(`${url}/orders/${orderId}/cancel`, {
          method: 'POST',
          headers: { ...json, ...headers },
          body: '{}',
        });
      expect((await cancel({})).status).toBe(401);
      expect((await cancel({ authorization: 'Demo ann' })).status).toBe(403);
      expect((await cancel({ authorization: 'Demo sam:support' })).status).toBe(204);
      expect(await (await fetch(`${url}/orders/${orderId}`)).json()).toMatchObject({ status: 'cancelled' });
      const doc = (await (await fetch(`${url}/openapi.json`)).json()) as { openapi: string; paths: object };
      expect(doc.openapi).toBe('3.1.0');
      expect(Object.keys(doc.paths).sort()).toEqual([
        '/customers/{customerId}/orders',
        '/orders',
        '/orders/{orderId}',
        '/orders/{orderId}/cancel',
      ]);
    } finally {
      await server.close();
    }
  });
});
