/**
 * The checkout saga: open, reserve stock, charge, ship. Each step sends `RunCheckoutStep` through the mediator
 * with the step's idempotency key, so its table writes and its `CheckoutProgressed` event commit in one unit of
 * work exactly once, across retries, crashes and recovery. A refusal (out of stock, card declined, order
 * cancelled) compensates the completed steps in reverse order; undoing `open` marks the order rejected.
 */
import { defineSaga, type StepTools, sagaContext } from '@cqrs-ts/saga';
import { CheckoutRefused, type CheckoutStep, type OrderLine, RunCheckoutStep } from './messages.ts';

export type CheckoutContext = { orderId: string; lines: OrderLine[]; totalCents: number };
const C = sagaContext<CheckoutContext>();

const retry = {
  maxAttempts: 5,
  backoff: { initialMs: 50, maxMs: 1_000 },
  retryOn: (error: unknown) => !(error instanceof CheckoutRefused),
};

function checkoutStep(id: CheckoutStep, undo: boolean) {
  const send = (ctx: CheckoutContext, tools: StepTools, action: 'act' | 'compensate') =>
    tools.send(
      RunCheckoutStep.create({ ...ctx, step: id, action }, { idempotencyKey: tools.idempotencyKey() }),
    );
  return C.step({
    id,
    retry,
    act: async (ctx, tools) => {
      await send(ctx, tools, 'act');
      return { done: true };
    },
    ...(undo
      ? {
          compensate: async (ctx: CheckoutContext, _r: unknown, tools: StepTools) => {
            await send(ctx, tools, 'compensate');
          },
        }
      : {}),
  });
}

export const Checkout = defineSaga({
  name: 'orders.checkout',
  version: 1,
  context: C,
  steps: [
    checkoutStep('open', true),
    checkoutStep('reserve-stock', true),
    checkoutStep('charge', true),
    checkoutStep('ship', false),
  ],
});
