import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  createMediator,
  defineCommand,
  defineStreamQuery,
  handle,
  handleStream,
  validation,
} from '@cqrs-ts/core';
import { mountCqrs } from '@cqrs-ts/express';
import { commandRoute, streamRoute } from '@cqrs-ts/http';
import express from 'express';
import { z } from 'zod';

const PlaceOrder = defineCommand('orders.place', {
  schema: z.object({ sku: z.string().min(1), qty: z.number().int().positive() }),
  result: z.object({ orderId: z.string() }),
}).returns<{ orderId: string }>();
const Tail = defineStreamQuery('orders.tail', {
  schema: z.object({ after: z.number().int().optional() }),
}).yields<{
  position: number;
  id: string;
}>();

function createOrders() {
  const orders: string[] = [];
  return createMediator({
    behaviors: [validation()],
    handlers: [
      handle(PlaceOrder, (c) => {
        orders.push(c.payload.sku);
        return { orderId: `o-${orders.length}` };
      }),
      handleStream(Tail, async function* (q) {
        for (let position = (q.payload.after ?? 0) + 1; position <= orders.length; position++)
          yield { position, id: `o-${position}` };
      }),
    ],
  });
}

/** What a client sees: a command, a problem, a stream and the OpenAPI document. */
async function visit(base: string): Promise<string[]> {
  const post = (body: string) =>
    fetch(`${base}/orders`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
  const placed = await post('{"sku":"book","qty":1}');
  const invalid = await post('{"sku":"","qty":0}');
  const live = await fetch(`${base}/orders-live`);
  const doc = (await (await fetch(`${base}/openapi.json`)).json()) as { openapi: string };
  return [
    `${placed.status} ${await placed.text()}`, // 201 {"orderId":"o-1"}
    `${invalid.status} ${invalid.headers.get('content-type')}`, // 400 application/problem+json; charset=utf-8
    (await live.text()).trim(), // id: 1 / data: {"position":1,"id":"o-1"}
    doc.openapi, // 3.1.0
  ];
}

export async function main(): Promise<string[]> {
  const app = express();
  mountCqrs(app, {
    mediator: createOrders(),
    routes: [
      commandRoute(PlaceOrder, { path: '/orders', status: 201 }),
      streamRoute(Tail, { path: '/orders-live' }),
    ],
    openapi: { path: '/openapi.json', info: { title: 'orders', version: '1.0.0' } },
  });
  const server = await new Promise<Server>((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s));
  });
  try {
    return await visit(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
  } finally {
    server.closeAllConnections();
    server.close();
  }
}

// biome-ignore lint/suspicious/noConsole: the example prints what it saw
if (import.meta.url === `file://${process.argv[1]}`) for (const line of await main()) console.log(line);
