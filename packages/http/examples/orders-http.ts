import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  createInMemoryUnitOfWork,
  createMediator,
  defineCommand,
  defineQuery,
  defineStreamQuery,
  handle,
  handleStream,
  NotFoundError,
  validation,
} from '@cqrs-ts/core';
import {
  commandRoute,
  createHttpHandler,
  createOpenApiDocument,
  nodeRouteInput,
  queryRoute,
  sendNodeReply,
  streamRoute,
} from '@cqrs-ts/http';
import { z } from 'zod';

const PlaceOrder = defineCommand('orders.place', {
  schema: z.object({ sku: z.string().min(1), qty: z.number().int().positive() }),
  result: z.object({ orderId: z.string() }),
}).returns<{ orderId: string }>();
const GetOrder = defineQuery('orders.get', { schema: z.object({ id: z.string() }) }).returns<{
  id: string;
  sku: string;
}>();
const Tail = defineStreamQuery('orders.tail', {
  schema: z.object({ after: z.number().int().optional() }),
}).yields<{
  position: number;
  id: string;
}>();

export async function main(): Promise<string[]> {
  const orders = new Map<string, string>();
  const mediator = createMediator({
    behaviors: [validation(), createInMemoryUnitOfWork()],
    handlers: [
      handle(PlaceOrder, (c) => {
        const orderId = `o-${orders.size + 1}`;
        orders.set(orderId, c.payload.sku);
        return { orderId };
      }),
      handle(GetOrder, (q) => {
        const sku = orders.get(q.payload.id);
        if (sku === undefined) throw new NotFoundError('order', q.payload.id);
        return { id: q.payload.id, sku };
      }),
      handleStream(Tail, async function* (q) {
        let position = q.payload.after ?? 0;
        for (const id of [...orders.keys()].slice(position)) yield { position: ++position, id };
      }),
    ],
  });
  const http = createHttpHandler({
    mediator,
    routes: [
      commandRoute(PlaceOrder, { path: '/orders', status: 201 }),
      queryRoute(GetOrder, { path: '/orders/:id' }),
      streamRoute(Tail, { path: '/orders-live', resumeField: 'after' }),
    ],
  });
  const openapi = JSON.stringify(
    createOpenApiDocument(http, { info: { title: 'orders', version: '1.0.0' } }),
  );
  const server = createServer((req, res) => {
    if (req.url === '/openapi.json') return void res.end(openapi);
    void http.handle(nodeRouteInput(req, res, undefined)).then((reply) => sendNodeReply(res, reply));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const seen: string[] = [];
  try {
    const post = (body: string, key: string) =>
      fetch(`${base}/orders`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'idempotency-key': key },
        body,
      });
    const placed = await post('{"sku":"book","qty":1}', 'k-1');
    seen.push(`${placed.status} ${await placed.text()}`); // 201 {"orderId":"o-1"}
    const replay = await post('{"sku":"book","qty":1}', 'k-1');
    seen.push(`${replay.status} replayed=${replay.headers.get('idempotency-replayed')}`); // 201 replayed=true
    const invalid = await post('{"sku":"","qty":0}', 'k-2');
    seen.push(`${invalid.status} ${invalid.headers.get('content-type')}`); // 400 application/problem+json
    const missing = await fetch(`${base}/orders/o-9`);
    seen.push(`${missing.status}`); // 404
    const live = await fetch(`${base}/orders-live`);
    seen.push((await live.text()).trim()); // id: 1 / data: {"position":1,"id":"o-1"}
    const doc = (await (await fetch(`${base}/openapi.json`)).json()) as { openapi: string };
    seen.push(doc.openapi); // 3.1.0
  } finally {
    server.closeAllConnections();
    server.close();
  }
  return seen;
}

// biome-ignore lint/suspicious/noConsole: the example prints what it saw
if (import.meta.url === `file://${process.argv[1]}`) for (const line of await main()) console.log(line);
