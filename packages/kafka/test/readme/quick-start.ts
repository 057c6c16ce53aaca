import {
  createInMemoryOutboxStore,
  createMediator,
  createMessageCatalog,
  createOutboxRelay,
  defineEvent,
  on,
} from '@cqrs-ts/core';
import { createKafkaConsumer, createKafkaPublisher, ensureKafkaTopics } from '@cqrs-ts/kafka';
import { z } from 'zod';

const topic = process.env.KAFKA_TOPIC ?? 'orders';
const OrderPlaced = defineEvent('orders.order-placed', {
  topic,
  schema: z.object({ orderId: z.string(), total: z.number() }),
  key: (p) => p.orderId, // record key: one partition per order, in order
});
const brokers = (process.env.KAFKA_BROKERS ?? '127.0.0.1:9092').split(',');
await ensureKafkaTopics({ brokers, topics: [topic], partitions: 6, deadLetterTopic: (t) => `${t}.DLT` });

// producing service: the relay publishes what the outbox stored
const store = createInMemoryOutboxStore({ source: 'orders-svc' }); // or a Postgres/MySQL/SQLite store
const publisher = createKafkaPublisher({ brokers, clientId: 'orders-svc' });
const relay = createOutboxRelay({ store, publisher });
relay.start();

// consuming service
let placed!: () => void;
const done = new Promise<void>((resolve) => {
  placed = resolve;
});
const mediator = createMediator({
  handlers: [
    on(OrderPlaced, async (event) => {
      console.log('placed', event.payload.orderId);
      placed();
    }),
  ],
});
const consumer = createKafkaConsumer({
  brokers,
  groupId: 'billing',
  topics: [topic],
  mediator,
  catalog: createMessageCatalog([OrderPlaced]),
  concurrency: 16,
  maxAttempts: 5,
});
await consumer.start();

const tx = store.begin();
await store.append(tx, [OrderPlaced.create({ orderId: 'o-1', total: 12.5 })]);
tx.commit();
await done;

// shutdown
await consumer.stop();
await relay.stop();
await publisher.close();
