import { createMediator, defineCommand, defineQuery, handle, validation } from '@cqrs-ts/core';
import { z } from 'zod';

const PlaceOrder = defineCommand('orders.place-order', {
  schema: z.object({ sku: z.string().min(1), quantity: z.number().int().positive() }),
}).returns<{ orderId: string }>();

const GetOrder = defineQuery('orders.get-order').withPayload<{ orderId: string }>().returns<string | null>();

const orders = new Map<string, string>();
const mediator = createMediator({
  behaviors: [validation()], // the schema is a policy: without validation(), createMediator refuses to build
  handlers: [
    handle(PlaceOrder, (cmd) => {
      const orderId = `ord-${orders.size + 1}`;
      orders.set(orderId, cmd.payload.sku);
      return { orderId };
    }),
    handle(GetOrder, (q) => orders.get(q.payload.orderId) ?? null),
  ],
});

const { orderId } = await mediator.send(PlaceOrder.create({ sku: 'BOOK-1', quantity: 2 })); // typed, no casts
console.log(orderId, await mediator.query(GetOrder.create({ orderId })));
