import {
  createInMemoryUnitOfWork,
  createMediator,
  defineCommand,
  defineEvent,
  handle,
  on,
  retry,
} from '@cqrs-ts/core';

const OrderPlaced = defineEvent('orders.order-placed').withPayload<{ orderId: string }>();
const StockReserved = defineEvent('stock.reserved').withPayload<{ orderId: string }>();
const PlaceOrder = defineCommand('orders.place-order')
  .withPayload<{ orderId: string }>()
  .returns<{ orderId: string }>();
const ReserveStock = defineCommand('stock.reserve').withPayload<{ orderId: string }>();

const orders = new Map<string, string>();
// In memory: the embedded default and the test double. @cqrs-ts/postgres, /mysql and /sqlite have the real ones.
const unitOfWork = createInMemoryUnitOfWork();

const mediator = createMediator({
  behaviors: [retry(), unitOfWork], // retry() outside: each attempt gets a transaction of its own
  handlers: [
    handle(PlaceOrder, async (cmd, ctx) => {
      const tx = unitOfWork.transaction(ctx); // typed after the unit of work (here an InMemoryTransaction)
      tx.onCommit(() => orders.set(cmd.payload.orderId, 'placed'));
      ctx.emit(OrderPlaced, { orderId: cmd.payload.orderId }); // appended to the outbox before the commit
      await mediator.send(ReserveStock.create({ orderId: cmd.payload.orderId })); // joins this unit
      return { orderId: cmd.payload.orderId };
    }),
    handle(ReserveStock, (cmd, ctx) => {
      ctx.emit(StockReserved, { orderId: cmd.payload.orderId });
    }),
    // In-process handlers run after the commit, in the order the events were recorded.
    on(OrderPlaced, (e) =>
      console.log(`placed ${e.payload.orderId}, committed: ${orders.has(e.payload.orderId)}`),
    ),
    on(StockReserved, (e) => console.log(`stock reserved for ${e.payload.orderId}`)),
  ],
});

const first = await mediator.send(PlaceOrder.create({ orderId: 'o-1' }, { idempotencyKey: 'request-7' }));
const again = await mediator.send(PlaceOrder.create({ orderId: 'o-1' }, { idempotencyKey: 'request-7' }));
console.log(JSON.stringify(first) === JSON.stringify(again) ? 'replayed the stored result' : 'ran twice');
console.log(
  `outbox: ${unitOfWork.outbox
    .records()
    .map((r) => r.type)
    .join(', ')}`,
);
