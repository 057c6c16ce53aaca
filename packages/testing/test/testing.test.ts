import { defineCommand, defineEvent, handle, on } from '@cqrs-ts/core';
import { createTestMediator } from '@cqrs-ts/testing';
import { describe, expect, it } from 'vitest';

const PlaceOrder = defineCommand('orders.place').withPayload<{ sku: string }>().returns<string>();
const OrderPlaced = defineEvent('orders.placed').withPayload<{ sku: string }>();
const ReceiptSent = defineEvent('orders.receipt-sent').withPayload<{ sku: string }>();

describe('createTestMediator', () => {
  it('records events, waits for fire-and-forget work without sleeps, and captures failures', async () => {
    const t = createTestMediator({
      events: { strategy: 'fire-and-forget' },
      record: [ReceiptSent],
      handlers: [
        handle(PlaceOrder, (c, ctx) => {
          ctx.emit(OrderPlaced, { sku: c.payload.sku });
          return 'ok';
        }),
        on(OrderPlaced, async (e, ctx) => {
          // a slower handler (the subject): the test mediator waits for every handler
          await new Promise((r) => setTimeout(r, 15));
          ctx.emit(ReceiptSent, { sku: e.payload.sku });
        }),
        on(OrderPlaced, async () => {
          // fails after a delay (the subject)
          await new Promise((r) => setTimeout(r, 5));
          throw new Error('stats down');
        }),
      ],
    });
    expect(await t.mediator.send(PlaceOrder.create({ sku: 'A' }))).toBe('ok');
    expect(t.eventsOf(ReceiptSent)).toEqual([]);
    await t.idle();
    expect(t.single(OrderPlaced).payload.sku).toBe('A');
    expect(t.single(ReceiptSent).payload.sku).toBe('A');
    expect(t.failures.map((f) => (f.error as Error).message)).toEqual(['stats down']);
    expect(() => t.single(defineEvent('nope.none'))).toThrow(/expected exactly one nope.none, found 0/);
    t.reset();
    expect(t.events).toEqual([]);
  });
});
