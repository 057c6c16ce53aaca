import {
  createInMemoryOutboxStore,
  createMediator,
  createMessageCatalog,
  createOutboxRelay,
  currentContext,
  defineEvent,
  on,
} from '@cqrs-ts/core';
import { createRabbitConsumer, createRabbitPublisher } from '@cqrs-ts/rabbitmq';

const url = process.env.RABBITMQ_URL ?? 'amqp://guest:guest@127.0.0.1:5672';
const exchange = process.env.RABBITMQ_EXCHANGE ?? 'events';
const OrderPlaced = defineEvent('orders.order-placed', {
  topic: 'orders.placed', // the routing key
  key: (p: { orderId: string }) => p.orderId, // the ordering key
}).withPayload<{ orderId: string }>();

// consuming side (usually another service)
const seen: string[] = [];
let bothHandled!: () => void;
const done = new Promise<void>((resolve) => {
  bothHandled = resolve;
});
const mediator = createMediator({
  handlers: [
    on(OrderPlaced, (event) => {
      seen.push(`placed ${event.payload.orderId}, correlation ${currentContext()?.correlationId}`);
      if (seen.length === 2) bothHandled();
    }),
  ],
});
const consumer = createRabbitConsumer({
  url,
  exchange, // declared by start(), with the queue, its bindings and its dead-letter queue
  queue: process.env.RABBITMQ_QUEUE ?? 'billing',
  bindings: ['orders.#'],
  mediator,
  catalog: createMessageCatalog([OrderPlaced]), // validates payloads; unknown types are dead-lettered
  concurrency: 8,
  maxAttempts: 5,
});
await consumer.start();

// publishing side: the outbox relay moves committed events to RabbitMQ
const store = createInMemoryOutboxStore(); // or @cqrs-ts/postgres, mysql, sqlite
const publisher = createRabbitPublisher({ url, exchange });
const relay = createOutboxRelay({ store, publisher });
relay.start();

const tx = store.begin();
await store.append(tx, [OrderPlaced.create({ orderId: 'o-1' }, { correlationId: 'checkout-1' })]);
tx.commit();

// ...or publish directly (no outbox): one PublishResult per event
const [result] = await publisher.publishEvents([
  OrderPlaced.create({ orderId: 'o-2' }, { correlationId: 'checkout-2' }),
]);
if (!result?.ok) console.error(result?.error);

await done;
console.log(seen.sort().join('\n'));
await relay.stop();
await publisher.close();
await consumer.stop();
