// biome-ignore-all lint/suspicious/noConsole: an example prints what it does
/**
 * The README's progress feed example: a client follows a saga while it runs, then resumes after the last event it
 * saw. Run it with `npx node --conditions=@cqrs-ts/source packages/saga/examples/watch-progress.ts`.
 * The README shows the part between `#region readme` and `#endregion` (a test checks they match).
 */
import { createInMemorySagaStore } from '@cqrs-ts/core';
import { createSagaRunner, defineSaga, type SagaProgress, sagaContext } from '@cqrs-ts/saga';

export async function main(): Promise<{ live: string[]; resumed: string[] }> {
  // #region readme
  const Order = sagaContext<{ orderId: string }>();
  const Checkout = defineSaga({
    name: 'checkout',
    context: Order,
    steps: [
      Order.step({ id: 'reserve', act: () => ({ held: 1 }) }),
      Order.step({ id: 'charge', act: (ctx) => ({ paymentId: `pay-${ctx.orderId}` }) }),
    ],
  });
  const runner = createSagaRunner({ store: createInMemorySagaStore() });
  const line = (p: SagaProgress) =>
    p.kind === 'step' ? `${p.seq} ${p.action} ${p.stepId}` : `${p.seq} ${p.status}`;

  const running = runner.run(Checkout, { orderId: 'o-1' }, { id: 'o-1' });
  // Each commit of this runner wakes the feed (no polling); it ends once the saga is final.
  const live: string[] = [];
  for await (const progress of runner.watch('o-1')) live.push(line(progress));
  await running;
  console.log(live); // e.g. [ '0 running', '1 act reserve', '1 running', '2 act charge', '2 completed' ]

  // A client that saw the event with seq 1 resumes after it: later log rows, then the state now.
  const resumed: string[] = [];
  for await (const progress of runner.watch('o-1', { after: 1 })) resumed.push(line(progress));
  console.log(resumed); // [ '2 act charge', '2 completed' ]
  // #endregion readme
  return { live, resumed };
}

if (import.meta.main) await main();
