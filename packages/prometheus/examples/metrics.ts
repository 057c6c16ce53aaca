// biome-ignore-all lint/suspicious/noConsole: the example shows its results on stdout
// #region readme
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  createInMemoryBroker,
  createInMemoryOutboxStore,
  createMediator,
  createOutboxRelay,
  defineCommand,
  handle,
} from '@cqrs-ts/core';
import { createPrometheusMetrics } from '@cqrs-ts/prometheus';
import { Registry } from 'prom-client';

const PlaceOrder = defineCommand('orders.place-order').withPayload<{ sku: string }>().returns<string>();

export async function main(): Promise<string[]> {
  const registry = new Registry(); // your own registry: the package never touches the global one
  const outbox = createInMemoryOutboxStore();
  const relay = createOutboxRelay({ store: outbox, publisher: createInMemoryBroker() });
  const metrics = createPrometheusMetrics({ registry, relays: { orders: relay } });
  const mediator = createMediator({ handlers: [handle(PlaceOrder, (c) => `order of ${c.payload.sku}`)] });

  const server = createServer((req, res) => {
    if (req.url !== '/metrics') return void res.writeHead(404).end();
    void registry
      .metrics()
      .then((text) => res.writeHead(200, { 'content-type': registry.contentType }).end(text));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));

  await mediator.send(PlaceOrder.create({ sku: 'A-1' }));
  const { port } = server.address() as AddressInfo;
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  const lines = text
    .split('\n')
    .filter((l) => /^cqrs_(dispatch_duration_seconds_count|outbox_backlog)\{/.test(l));
  for (const line of lines) console.log(line);
  // cqrs_dispatch_duration_seconds_count{message_type="orders.place-order",kind="command",outcome="ok"} 1
  // cqrs_outbox_backlog{relay="orders"} 0

  metrics.close();
  server.close();
  return lines;
}

if (import.meta.main) await main();
// #endregion readme
