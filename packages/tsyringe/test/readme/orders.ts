import 'reflect-metadata';
import { createMediator, defineCommand, handle, type InferMessage } from '@cqrs-ts/core';
import { registerHandlers, tsyringeContainer, tsyringeScopeOf } from '@cqrs-ts/tsyringe';
import { container, injectable, Lifecycle } from 'tsyringe';

const PlaceOrder = defineCommand('orders.place').withPayload<{ sku: string }>().returns<string>();

const database: string[] = [];

/** One per top-level dispatch: collects writes, commits when the dispatch's child container is disposed. */
@injectable()
class UnitOfWork {
  readonly pending: string[] = [];
  dispose(): void {
    database.push(...this.pending.splice(0));
  }
}
container.register(UnitOfWork, { useClass: UnitOfWork }, { lifecycle: Lifecycle.ContainerScoped });

@injectable()
class PlaceOrderHandler {
  readonly #uow: UnitOfWork;
  constructor(uow: UnitOfWork) {
    this.#uow = uow;
  }
  handle(cmd: InferMessage<typeof PlaceOrder>): string {
    this.#uow.pending.push(cmd.payload.sku);
    return `${cmd.payload.sku} pending (${database.length} committed)`;
  }
}

const mediator = createMediator({
  handlers: registerHandlers(container, [
    handle(PlaceOrder, PlaceOrderHandler),
    // function handlers reach the dispatch's child container too
    handle(
      defineCommand('orders.audit').returns<number>(),
      (_c, ctx) => tsyringeScopeOf(ctx).resolve(UnitOfWork).pending.length,
    ),
  ]),
  container: tsyringeContainer(container),
});

export async function main() {
  const placed = [
    await mediator.send(PlaceOrder.create({ sku: 'tea' })),
    await mediator.send(PlaceOrder.create({ sku: 'cup' })),
  ];
  return { placed, database: [...database] };
}
