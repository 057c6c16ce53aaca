import 'reflect-metadata';
import {
  ConfigurationError,
  createInMemorySagaStore,
  createMediator,
  type DispatchContext,
  defineCommand,
  defineEvent,
  defineQuery,
  handle,
  type InferMessage,
  on,
} from '@cqrs-ts/core';
import { createSagaRunner, defineSaga, SagaFailedError, type StepTools, sagaContext } from '@cqrs-ts/saga';
import {
  registerHandlers,
  tsyringeContainer,
  tsyringeScope,
  tsyringeScopeOf,
  tsyringeStepResolver,
} from '@cqrs-ts/tsyringe';
import { injectable, Lifecycle, container as root, singleton } from 'tsyringe';
import { describe, expect, it } from 'vitest';

const Place = defineCommand('ts.place').withPayload<{ sku: string }>().returns<string[]>();
const Stock = defineQuery('ts.stock').withPayload<{ sku: string }>().returns<number>();
const Placed = defineEvent('ts.placed').withPayload<{ sku: string }>();

/** One per top-level dispatch (ContainerScoped), disposed with the dispatch's child container. */
@injectable()
class UnitOfWork {
  static made: UnitOfWork[] = [];
  readonly writes: string[] = [];
  disposed = false;
  constructor() {
    UnitOfWork.made.push(this);
  }
  dispose(): void {
    this.disposed = true;
  }
}

@injectable()
class StockHandler {
  readonly uow: UnitOfWork;
  constructor(uow: UnitOfWork) {
    this.uow = uow;
  }
  handle(q: InferMessage<typeof Stock>): number {
    this.uow.writes.push(`stock ${q.payload.sku}`);
    return 1;
  }
}

function setup() {
  const container = root.createChildContainer();
  container.register(UnitOfWork, { useClass: UnitOfWork }, { lifecycle: Lifecycle.ContainerScoped });
  UnitOfWork.made = [];
  return container;
}

describe('tsyringeContainer', () => {
  it('runs each top-level dispatch in a child container that nested dispatches share, disposed when it settles', async () => {
    const container = setup();
    @injectable()
    class PlaceHandler {
      readonly uow: UnitOfWork;
      constructor(uow: UnitOfWork) {
        this.uow = uow;
      }
      async handle(cmd: InferMessage<typeof Place>, ctx: DispatchContext): Promise<string[]> {
        this.uow.writes.push(`place ${cmd.payload.sku}`);
        await mediator.query(Stock.create({ sku: cmd.payload.sku }));
        ctx.emit(Placed, { sku: cmd.payload.sku });
        return this.uow.writes;
      }
    }
    const handlers = registerHandlers(container, [
      handle(Place, PlaceHandler),
      handle(Stock, StockHandler),
      on(
        Placed,
        (e, ctx) => void tsyringeScopeOf(ctx).resolve(UnitOfWork).writes.push(`placed ${e.payload.sku}`),
      ),
    ]);
    const mediator = createMediator({ handlers, container: tsyringeContainer(container) });
    expect(await mediator.send(Place.create({ sku: 'a' }))).toEqual(['place a', 'stock a', 'placed a']);
    expect(await mediator.send(Place.create({ sku: 'b' }))).toEqual(['place b', 'stock b', 'placed b']);
    expect(UnitOfWork.made).toHaveLength(2);
    expect(UnitOfWork.made.map((u) => u.disposed)).toEqual([true, true]);
  });

  it('adopts a child container given as the dispatch scope, without disposing it', async () => {
    const container = setup();
    const mediator = createMediator({
      handlers: registerHandlers(container, [handle(Stock, StockHandler)]),
      container: tsyringeContainer(container),
    });
    const request = container.createChildContainer();
    await mediator.query(Stock.create({ sku: 'x' }), { scope: tsyringeScope(request) });
    await mediator.query(Stock.create({ sku: 'y' }), { scope: tsyringeScope(request) });
    expect(UnitOfWork.made).toHaveLength(1);
    expect(UnitOfWork.made[0]!.writes).toEqual(['stock x', 'stock y']);
    expect(UnitOfWork.made[0]!.disposed).toBe(false);
  });

  it('fails closed on what is not a tsyringe container, a wrong lifecycle, and a dispatch without its scope', async () => {
    expect(() => tsyringeContainer({} as never)).toThrow(ConfigurationError);
    expect(() => tsyringeScope(null as never)).toThrow(ConfigurationError);
    expect(() => registerHandlers(setup(), [], { lifecycle: Lifecycle.Singleton as never })).toThrow(
      /lifecycle/,
    );
    const mediator = createMediator({
      handlers: [handle(Stock, (_q, ctx) => tsyringeScopeOf(ctx) as never)],
    });
    await expect(mediator.query(Stock.create({ sku: 'x' }))).rejects.toThrow(/no tsyringe scope/);
  });
});

type Ctx = { orderId: string };
const C = sagaContext<Ctx>();

@injectable()
class Payments {
  readonly log: string[] = [];
}

@injectable()
class ChargeStep {
  static made: ChargeStep[] = [];
  chargeId: string | undefined;
  readonly payments: Payments;
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
    this.payments.log.push(`refund ${this.chargeId} (result ${result})`);
  }
}

@singleton()
class SharedStep {
  act(): void {}
}

it('resolves saga steps per run: the instance that acted compensates; a singleton step is refused', async () => {
  const container = root.createChildContainer();
  container.register(Payments, { useClass: Payments }, { lifecycle: Lifecycle.Singleton });
  const runner = createSagaRunner({
    store: createInMemorySagaStore(),
    resolver: tsyringeStepResolver(container),
  });
  const failing = C.step({ id: 'ship', act: () => Promise.reject(new Error('no courier')) });
  const saga = defineSaga({
    name: 'ts-checkout',
    context: C,
    steps: [{ id: 'charge', use: ChargeStep }, failing],
  });
  for (const orderId of ['o-1', 'o-2']) {
    expect(await runner.run(saga, { orderId }).catch((e: unknown) => e)).toBeInstanceOf(SagaFailedError);
  }
  expect(ChargeStep.made).toHaveLength(2);
  expect(container.resolve(Payments).log).toEqual([
    'charge ch-o-1-1',
    'refund ch-o-1-1 (result ch-o-1-1)',
    'charge ch-o-2-1',
    'refund ch-o-2-1 (result ch-o-2-1)',
  ]);
  const shared = defineSaga({ name: 'ts-shared', context: C, steps: [{ id: 'shared', use: SharedStep }] });
  await runner.run(shared, { orderId: 'o-3' });
  const refused = (await runner.run(shared, { orderId: 'o-4' }).catch((e: unknown) => e)) as SagaFailedError;
  expect(refused.cause).toBeInstanceOf(ConfigurationError);
});
