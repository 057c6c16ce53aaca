import { expect, it } from 'vitest';
import { runMessagingFlow } from './messaging.ts';

it('an order placed through the outbox reaches the shipping consumer once, with its correlation id', async () => {
  const { orderId, handled, shipments } = await runMessagingFlow();
  expect(handled).toEqual([{ orderId, correlationId: 'demo-checkout-2' }]);
  expect(shipments).toEqual([{ order_id: orderId, correlation_id: 'demo-checkout-2' }]);
});
