/**
 * `npm run demo`: the request path end to end on embedded defaults (no server needed).
 */

import { DatabaseSync } from 'node:sqlite';
import { applicationMap, isCqrsError, LOG_START, type Logger, runWithContext } from '@cqrs-ts/core';
import { runCheckoutSagas } from './checkout-saga.ts';
import { createFulfilmentService, PackLine, Restock, ShipOrder, StartFulfilment } from './fulfilment.ts';
import { runMessagingFlow } from './messaging.ts';
import {
  CancelOrder,
  createOrdersService,
  ExportOrders,
  GetOrder,
  ListOrders,
  PlaceOrder,
} from './orders.ts';

const dim = (s: string) => `\x1b[2m${s}\x1b[0m`;
const bold = (s: string) => `\x1b[1m${s}\x1b[0m`;

const logger: Logger = {
  debug() {},
  info: (o, m) =>
    console.log(
      dim(`  log  ${m}  corr=${o.correlationId} req=${String(o.requestId).slice(0, 13)}… ${o.durationMs}ms`),
    ),
  warn: (o, m) => console.log(dim(`  warn ${m}  corr=${o.correlationId} ${(o.err as Error).message}`)),
  error: (o, m) => console.log(dim(`  err  ${m}  corr=${o.correlationId} ${(o.err as Error).message}`)),
  isLevelEnabled: (level) => level !== 'debug',
};

const mediator = createOrdersService(logger, (line) => console.log(`  event → ${line}`));
const step = (title: string) => console.log(`\n${bold(title)}`);

step('1. Place an order (validation → stock check with retries → handler → OrderPlaced event handlers)');
const placed = await runWithContext({ correlationId: 'demo-checkout-1' }, () =>
  mediator.send(PlaceOrder.create({ customerId: 'c-1', lines: [{ sku: 'BOOK-1', quantity: 2 }] })),
);
console.log('  →', placed);

step('2. Query it back');
console.log('  →', await mediator.query(GetOrder.create({ orderId: placed.orderId })));

step('3. An invalid command is rejected with every field error');
try {
  await mediator.send(PlaceOrder.create({ customerId: '', lines: [{ sku: '', quantity: 0 }] }));
} catch (error) {
  if (isCqrsError(error, 'CQRS_VALIDATION')) {
    console.log(`  → ${error.code}:`);
    for (const issue of (error as unknown as { issues: { path: unknown[]; message: string }[] }).issues) {
      console.log(`     ${issue.path.join('.') || '(root)'}: ${issue.message}`);
    }
  } else throw error;
}

step('4. Authorization: a customer may not cancel, support staff may');
try {
  await mediator.send(CancelOrder.create({ orderId: placed.orderId }), { context: { user: { id: 'c-1' } } });
} catch (error) {
  console.log(`  → ${(error as Error).name}: ${(error as Error).message}`);
}
await mediator.send(CancelOrder.create({ orderId: placed.orderId }), {
  context: { user: { id: 'agent-7', roles: ['support'] } },
});
console.log(
  '  → cancelled by support:',
  (await mediator.query(GetOrder.create({ orderId: placed.orderId })))?.status,
);

step('5. Pagination is validated, never clamped');
console.log('  →', await mediator.query(ListOrders.create({ page: 1, pageSize: 10 })));
try {
  ListOrders.create({ page: 1, pageSize: 500 });
} catch (error) {
  console.log(`  → ${(error as Error).message}`);
}

step('6. Stream a customer’s orders, one item at a time');
await mediator.send(PlaceOrder.create({ customerId: 'c-1', lines: [{ sku: 'PEN-2', quantity: 1 }] }));
for await (const order of mediator.stream(ExportOrders.create({ customerId: 'c-1' }))) {
  console.log(`  item → ${order.id} ${order.status}`);
}

step('7. Registered handlers and their pipelines');
for (const h of mediator.describe())
  console.log(`  ${h.kind.padEnd(7)} ${h.messageType.padEnd(22)} ${h.behaviors.join(' → ')}`);

step('8. Application map (Mermaid)');
console.log(applicationMap(mediator.describe()).replace(/^/gm, '  '));

step('9. Transactional outbox → relay → broker → consumer with inbox (embedded SQLite, in-memory broker)');
const flow = await runMessagingFlow((line) => console.log(`  ${line}`));
console.log('  → shipments:', flow.shipments);

step('10. Checkout saga: reserve stock → charge (card, invoice fallback) → ship, compensated on failure');
await runCheckoutSagas((line) => console.log(`  ${line}`));

step(
  '11. Fulfilment as an event-sourced aggregate, stock as a versioned row (SQLite unit of work, no transaction code)',
);
const fulfilment = createFulfilmentService(new DatabaseSync(':memory:'));
await fulfilment.mediator.send(Restock.create({ sku: 'BOOK-1', quantity: 1 }));
await fulfilment.mediator.send(StartFulfilment.create({ orderId: 'o-42', skus: ['BOOK-1', 'PEN-2'] }));
await fulfilment.mediator.send(PackLine.create({ orderId: 'o-42', sku: 'BOOK-1' }));
try {
  await fulfilment.mediator.send(PackLine.create({ orderId: 'o-42', sku: 'PEN-2' }));
} catch (error) {
  console.log(`  → refused, nothing written: ${(error as Error).message}`);
}
await fulfilment.mediator.send(Restock.create({ sku: 'PEN-2', quantity: 5 }));
await fulfilment.mediator.send(PackLine.create({ orderId: 'o-42', sku: 'PEN-2' }));
await fulfilment.mediator.send(ShipOrder.create({ orderId: 'o-42' }));
for (const e of (await fulfilment.eventStore.read({ after: LOG_START })).entries) {
  console.log(`  log ${e.position} ${e.type} ${e.streamId}@${e.streamVersion}`);
}
