import {
  authorization,
  createMediator,
  defineCommand,
  handle,
  logging,
  retry,
  timeout,
  validation,
} from '@cqrs-ts/core';
import { z } from 'zod';

const PlaceOrder = defineCommand('orders.place-order', {
  schema: z.object({ sku: z.string().min(1), quantity: z.number().int().positive() }),
}).returns<{ orderId: string }>();

const mediator = createMediator({
  messages: [PlaceOrder], // every declared command/query must have a handler
  // the schema needs validation(), the timeout timeout(), the retries retry(): a missing one fails here
  behaviors: [logging({ logger: console }), validation(), authorization(), retry(), timeout()],
  handlers: [
    handle(PlaceOrder, async (cmd, ctx) => ({ orderId: `${cmd.payload.sku}-${ctx.execution.user?.id}` }), {
      timeout: 2_000, // per attempt
      retries: 3, // 3 retries after the first attempt: 4 calls at most
    }),
  ],
});

const { orderId } = await mediator.send(PlaceOrder.create({ sku: 'A-1', quantity: 1 }), {
  context: { user: { id: 'u-1' }, tenantId: 'acme' },
});
console.log(orderId); // A-1-u-1
