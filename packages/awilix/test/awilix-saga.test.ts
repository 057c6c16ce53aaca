import { awilixStepResolver } from '@cqrs-ts/awilix';
import { createInMemorySagaStore } from '@cqrs-ts/core';
import { createSagaRunner, defineSaga, SagaFailedError, type StepTools, sagaContext } from '@cqrs-ts/saga';
import { asClass, createContainer, InjectionMode } from 'awilix';
import { expect, it } from 'vitest';

type Ctx = { orderId: string };
const C = sagaContext<Ctx>();

class Payments {
  readonly log: string[] = [];
}

/** A step class with state and a dependency from the container. */
class ChargeStep {
  static made: ChargeStep[] = [];
  readonly payments: Payments;
  chargeId: string | undefined;
  constructor({ payments }: { payments: Payments }) {
    this.payments = payments;
    ChargeStep.made.push(this);
  }
  act(ctx: Ctx, tools: StepTools): string {
    this.chargeId = `ch-${ctx.orderId}-${tools.attempt}`;
    this.payments.log.push(`charge ${this.chargeId}`);
    return this.chargeId;
  }
  compensate(_ctx: Ctx, result: string): void {
    // the instance that acted compensates: its own state is still there
    this.payments.log.push(`refund ${this.chargeId} (result ${result})`);
  }
}

it('builds saga steps from the container: a fresh instance per run, the one that acted compensates', async () => {
  const container = createContainer({ injectionMode: InjectionMode.PROXY, strict: true });
  container.register({ payments: asClass(Payments).singleton() });
  const saga = defineSaga({
    name: 'awilix-checkout',
    context: C,
    steps: [
      { id: 'charge', use: ChargeStep },
      C.step({ id: 'ship', act: () => Promise.reject(new Error('no courier')) }),
    ],
  });
  const runner = createSagaRunner({
    store: createInMemorySagaStore(),
    resolver: awilixStepResolver(container),
  });
  for (const orderId of ['o-1', 'o-2']) {
    const error = await runner.run(saga, { orderId }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SagaFailedError);
  }
  expect(ChargeStep.made).toHaveLength(2);
  expect(ChargeStep.made[0]).not.toBe(ChargeStep.made[1]);
  expect(container.resolve<Payments>('payments').log).toEqual([
    'charge ch-o-1-1',
    'refund ch-o-1-1 (result ch-o-1-1)',
    'charge ch-o-2-1',
    'refund ch-o-2-1 (result ch-o-2-1)',
  ]);
});
