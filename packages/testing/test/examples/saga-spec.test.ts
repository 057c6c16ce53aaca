import { defineSaga, sagaContext } from '@cqrs-ts/saga';
import { fails, sagaSpec, succeeds } from '@cqrs-ts/testing/saga';
import { it } from 'vitest';

class PaymentDeclined extends Error {}

interface Checkout {
  readonly orderId: string;
}
const Ctx = sagaContext<Checkout>();
const checkout = defineSaga({
  name: 'checkout',
  context: Ctx,
  steps: [
    Ctx.step({
      id: 'reserve',
      act: async () => ({ reservationId: 'from-the-warehouse' }),
      compensate: async () => {},
    }),
    Ctx.step({ id: 'charge', act: async () => ({ paymentId: 'from-the-bank' }), compensate: async () => {} }),
    Ctx.step({ id: 'ship', act: async () => ({ trackingId: 't-1' }) }),
  ],
});

it('completes when every step succeeds', () =>
  sagaSpec(checkout)
    .given({ reserve: succeeds({ reservationId: 'r1' }), charge: succeeds({ paymentId: 'p1' }) })
    .when({ orderId: 'o1' })
    .thenCompleted({
      reserve: { reservationId: 'r1' },
      charge: { paymentId: 'p1' },
      ship: { trackingId: 't-1' },
    }));

it('releases the reservation when the payment is declined', () =>
  sagaSpec(checkout)
    .given({
      reserve: succeeds({ reservationId: 'r1' }),
      charge: fails(new PaymentDeclined('card declined')),
    })
    .when({ orderId: 'o1' })
    .thenCompensated(['reserve'], PaymentDeclined));

it('retries a step as many times as outcomes are given, without waiting', () =>
  sagaSpec(checkout)
    .given({ charge: [fails(new Error('bank timeout')), succeeds({ paymentId: 'p2' })] })
    .when({ orderId: 'o1' })
    .thenCompleted({ charge: { paymentId: 'p2' } }));

it('reports a compensation that fails', () =>
  sagaSpec(checkout)
    .given({
      reserve: { act: succeeds({ reservationId: 'r1' }), compensate: fails(new Error('warehouse down')) },
      charge: succeeds({ paymentId: 'p1' }),
      ship: fails(new Error('no courier')),
    })
    .when({ orderId: 'o1' })
    .thenOutcome({
      status: 'compensation_failed',
      failedStep: 'ship',
      compensated: ['charge'],
      compensationFailed: ['reserve'],
      error: /no courier/,
    }));
