import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createConsole, toNodeListener } from '@cqrs-ts/console';
import {
  createInMemoryBroker,
  createInMemoryOutboxStore,
  createMediator,
  createOutboxRelay,
  defineCommand,
  defineEvent,
  handle,
  on,
} from '@cqrs-ts/core';

const OrderPlaced = defineEvent('orders.order-placed', { topic: 'orders' }).withPayload<{
  orderId: string;
}>();
const PlaceOrder = defineCommand('orders.place').returns<{ orderId: string }>();

export async function main(): Promise<string[]> {
  const mediator = createMediator({
    handlers: [
      handle(PlaceOrder, () => ({ orderId: 'o-1' }), { emits: [OrderPlaced] }),
      on(OrderPlaced, () => {}),
    ],
  });
  const store = createInMemoryOutboxStore();
  const broker = createInMemoryBroker();
  const relay = createOutboxRelay({ store, publisher: broker, maxAttempts: 1 });
  // an event the broker refuses once: it becomes a dead letter
  broker.failWhen(() => true);
  await store.transaction((tx) => store.append(tx, [OrderPlaced.create({ orderId: 'o-1' })]));
  await relay.runOnce();
  broker.failWhen(undefined);

  const audit: string[] = [];
  const operatorConsole = createConsole({
    mediator,
    outbox: { store, relay },
    // who may replay, delete, resume and rebuild: here, whoever sends the operators' bearer token
    authorize: ({ request }) =>
      request.headers.get('authorization') === 'Bearer ops-token' ? { id: 'ops' } : undefined,
    audit: (e) => audit.push(`${e.who} ${e.action} ${e.outcome}`),
  });
  const server = createServer(toNodeListener(operatorConsole)); // or consoleFastify, mountConsoleHono, mountConsoleExpress
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const seen: string[] = [];
  try {
    const page = await fetch(`${origin}/console`);
    const cookie = page.headers.get('set-cookie')!.split(';')[0]!; // the session's CSRF cookie ...
    const token = /name="csrf-token" content="([^"]+)"/.exec(await page.text())![1]!; // ... and its token
    seen.push(`page ${page.status}`); // page 200
    const outbox = (await (await fetch(`${origin}/console/api/outbox`)).json()) as { dead: number };
    seen.push(`dead letters ${outbox.dead}`); // dead letters 1
    const dead = (await (await fetch(`${origin}/console/api/outbox/dead-letters`)).json()) as {
      items: { id: string; payload: string }[];
    };
    seen.push(dead.items[0]!.payload); // {"orderId":"o-1"}
    const replay = await fetch(`${origin}/console/api/outbox/dead-letters/replay`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        origin,
        cookie,
        'x-csrf-token': token,
        authorization: 'Bearer ops-token',
      },
      body: JSON.stringify({ ids: [dead.items[0]!.id] }),
    });
    seen.push(`replay ${replay.status} ${await replay.text()}`); // replay 200 {"action":"outbox.replay","result":1,"by":"ops"}
    seen.push(`published ${(await relay.runOnce()).published}`); // published 1
    seen.push(...audit); // ops outbox.replay done
  } finally {
    server.closeAllConnections();
    server.close();
  }
  return seen;
}

// biome-ignore lint/suspicious/noConsole: the example prints what it saw
if (import.meta.url === `file://${process.argv[1]}`) for (const line of await main()) console.log(line);
