/**
 * The orders service's integration events, end to end on embedded defaults: the command handler writes the order
 * and emits its event, and the unit of work commits both in one SQLite transaction (transactional outbox), with no
 * transaction or outbox code in the handler; the relay publishes committed events to the
 * in-memory broker as CloudEvents, and a "shipping" consumer decodes, deduplicates (inbox) and handles them with
 * the producer's correlation id. Swap the SQLite store for `@cqrs-ts/postgres` and the in-memory broker for a
 * broker package (NATS, RabbitMQ, Redis, Kafka) and nothing else changes.
 */
import { DatabaseSync } from 'node:sqlite';
import {
  consumerTransaction,
  createInMemoryBroker,
  createMediator,
  createMessageCatalog,
  createMessageProcessor,
  createOutboxRelay,
  currentContext,
  handle,
  on,
  runWithContext,
  validation,
} from '@cqrs-ts/core';
import type { OutboxMessage } from '@cqrs-ts/core/spi';
import {
  createSqliteInboxGuard,
  createSqliteOutboxStore,
  createSqliteUnitOfWork,
  migrate,
} from '@cqrs-ts/sqlite';
import { OrderPlaced, PlaceOrder } from './orders.ts';

/** Runs the flow and returns what the consumer saw, for the demo and its test. */
export async function runMessagingFlow(log: (line: string) => void = () => {}) {
  const orders = new DatabaseSync(':memory:');
  const shipping = new DatabaseSync(':memory:');
  migrate(orders);
  migrate(shipping);
  orders.exec('CREATE TABLE orders (id TEXT PRIMARY KEY, customer TEXT NOT NULL)');
  shipping.exec('CREATE TABLE shipments (order_id TEXT PRIMARY KEY, correlation_id TEXT NOT NULL)');

  const outbox = createSqliteOutboxStore({ database: orders, source: 'orders-service' });
  // The unit of work opens the transaction, appends the events the handler emits, and commits.
  const unitOfWork = createSqliteUnitOfWork({ database: orders, outbox });
  const producer = createMediator({
    behaviors: [validation(), unitOfWork],
    handlers: [
      handle(PlaceOrder, (cmd, ctx) => {
        const orderId = `ord-${Date.now().toString(36)}`;
        unitOfWork
          .transaction(ctx)
          .prepare('INSERT INTO orders (id, customer) VALUES (?, ?)')
          .run(orderId, cmd.payload.customerId);
        ctx.emit(OrderPlaced, { orderId, customerId: cmd.payload.customerId });
        return { orderId };
      }),
    ],
  });

  // the shipping service: its own mediator, inbox and tables
  const handled: { orderId: string; correlationId: string | undefined }[] = [];
  const consumer = createMediator({
    behaviors: [validation()],
    handlers: [
      on(OrderPlaced, (event) => {
        const correlationId = currentContext()?.correlationId;
        consumerTransaction<DatabaseSync>()!
          .prepare('INSERT INTO shipments (order_id, correlation_id) VALUES (?, ?)')
          .run(event.payload.orderId, correlationId ?? '');
        handled.push({ orderId: event.payload.orderId, correlationId });
        log(`shipping ← ${event.type} ${event.payload.orderId} corr=${correlationId}`);
      }),
    ],
  });
  const processor = createMessageProcessor({
    name: 'shipping',
    mediator: consumer,
    catalog: createMessageCatalog([OrderPlaced]),
    inbox: createSqliteInboxGuard({ database: shipping }),
  });
  const broker = createInMemoryBroker();
  const delivered: OutboxMessage[] = [];
  broker.subscribe('*', async (m) => {
    delivered.push(m);
    const d = await processor.process({
      attributes: m.headers,
      data: m.body,
      deliveryAttempt: 1,
      source: m.topic,
    });
    log(
      `broker → ${m.type} as CloudEvents ${m.headers.specversion} ⇒ ${d.action}${d.action === 'ack' ? ` (${d.outcome})` : ''}`,
    );
    if (d.action !== 'ack') throw new Error(`not handled: ${d.action}`);
  });
  const relay = createOutboxRelay({ store: outbox, publisher: broker });

  const { orderId } = await runWithContext({ correlationId: 'demo-checkout-2' }, () =>
    producer.send(PlaceOrder.create({ customerId: 'c-9', lines: [{ sku: 'MUG-3', quantity: 1 }] })),
  );
  log(`orders: committed ${orderId} and its OrderPlaced event in one transaction`);
  const first = await relay.runOnce();
  log(`relay: published ${first.published} event(s)`);

  // a redelivery (e.g. the relay crashed before marking the row) has no second effect thanks to the inbox
  await broker.publish(delivered.slice(0, 1));
  const health = await relay.health();
  log(`relay health: backlog ${health.backlog}, stalled ${health.stalled}`);
  const shipments = shipping
    .prepare('SELECT order_id, correlation_id FROM shipments')
    .all()
    .map((r) => ({ ...r }));
  orders.close();
  shipping.close();
  return { orderId, handled, shipments };
}
