import 'reflect-metadata';
import { ConfigurationError, createInMemorySagaStore } from '@cqrs-ts/core';
import { CQRS_STEP_RESOLVER, CqrsModule, type NestStepResolver } from '@cqrs-ts/nestjs';
import { createSagaRunner, defineSaga, SagaFailedError, type StepTools, sagaContext } from '@cqrs-ts/saga';
import { Injectable, Module, Scope } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { expect, it } from 'vitest';

type Ctx = { orderId: string };
const C = sagaContext<Ctx>();

@Injectable()
class Payments {
  readonly log: string[] = [];
}

/** A transient step provider with state and a singleton dependency. */
@Injectable({ scope: Scope.TRANSIENT })
class ChargeStep {
  static made: ChargeStep[] = [];
  readonly payments: Payments;
  chargeId: string | undefined;
  constructor(payments: Payments) {
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

/** Not a provider: Nest builds it per run. */
class NotifyStep {
  static made = 0;
  readonly payments: Payments;
  constructor(payments: Payments) {
    this.payments = payments;
    NotifyStep.made++;
  }
  act(): void {}
}

/** A singleton step provider: refused, one instance would serve every run. */
@Injectable()
class SharedStep {
  act(): void {}
}

const failing = C.step({ id: 'ship', act: () => Promise.reject(new Error('no courier')) });

it('gives saga steps from Nest: a fresh instance per run, the one that acted compensates; singleton steps refused', async () => {
  @Module({ imports: [CqrsModule.forRoot()], providers: [Payments, ChargeStep, SharedStep] })
  class AppModule {}
  const app = await NestFactory.createApplicationContext(AppModule, { logger: false });
  try {
    const resolver = app.get<NestStepResolver>(CQRS_STEP_RESOLVER);
    const runner = createSagaRunner({ store: createInMemorySagaStore(), resolver });
    const saga = defineSaga({
      name: 'nest-checkout',
      context: C,
      steps: [{ id: 'charge', use: ChargeStep }, { id: 'notify', use: NotifyStep }, failing],
    });
    for (const orderId of ['o-1', 'o-2']) {
      const error = await runner.run(saga, { orderId }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(SagaFailedError);
    }
    // ChargeStep instances made for the runs (Nest may also build one at start-up for the transient provider)
    const used = ChargeStep.made.filter((s) => s.chargeId !== undefined);
    expect(used).toHaveLength(2);
    expect(NotifyStep.made).toBe(2);
    expect(app.get(Payments).log).toEqual([
      'charge ch-o-1-1',
      'refund ch-o-1-1 (result ch-o-1-1)',
      'charge ch-o-2-1',
      'refund ch-o-2-1 (result ch-o-2-1)',
    ]);

    const shared = defineSaga({
      name: 'nest-shared',
      context: C,
      steps: [{ id: 'shared', use: SharedStep }],
    });
    const refused = (await runner
      .run(shared, { orderId: 'o-3' })
      .catch((e: unknown) => e)) as SagaFailedError;
    expect(refused).toBeInstanceOf(SagaFailedError);
    expect(refused.cause).toBeInstanceOf(ConfigurationError);
    expect(String((refused.cause as Error).message)).toMatch(/SharedStep is a singleton provider/);
  } finally {
    await app.close();
  }
});
