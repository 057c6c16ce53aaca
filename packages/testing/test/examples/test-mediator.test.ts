import { defineCommand, defineEvent, handle } from '@cqrs-ts/core';
import { createTestMediator } from '@cqrs-ts/testing';
import { expect, it } from 'vitest';

const PlaceOrder = defineCommand('orders.place').withPayload<{ sku: string }>().returns<string>();
const OrderPlaced = defineEvent('orders.placed').withPayload<{ sku: string }>();

it('records the event a command emits', async () => {
  const t = createTestMediator({
    record: [OrderPlaced],
    handlers: [
      handle(PlaceOrder, (cmd, ctx) => {
        ctx.emit(OrderPlaced, { sku: cmd.payload.sku });
        return 'ok';
      }),
    ],
  });
  await t.mediator.send(PlaceOrder.create({ sku: 'A' }));
  await t.idle();
  expect(t.single(OrderPlaced).payload.sku).toBe('A');
  expect(t.failures).toHaveLength(0);
});
