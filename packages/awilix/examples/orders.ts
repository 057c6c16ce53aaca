// biome-ignore-all lint/suspicious/noConsole: the example shows its results on stdout
import { awilixContainer, awilixScopeOf, registerHandlers } from '@cqrs-ts/awilix';
import { createMediator, defineCommand, defineQuery, handle, type InferMessage } from '@cqrs-ts/core';
import { asClass, asValue, createContainer, InjectionMode } from 'awilix';

const PlaceOrder = defineCommand('orders.place')
  .withPayload<{ sku: string; qty: number }>()
  .returns<string>();
const CountOrders = defineQuery('orders.count').withPayload<Record<string, never>>().returns<number>();

// One unit of work per top-level dispatch: it collects writes and commits when its scope ends.
class UnitOfWork {
  readonly pending: string[] = [];
  constructor({ database }: Cradle) {
    this.#database = database;
  }
  readonly #database: string[];
  commit(): void {
    this.#database.push(...this.pending.splice(0));
  }
}

interface Cradle {
  database: string[];
  uow: UnitOfWork;
  tenant: string;
}

class PlaceOrderHandler {
  readonly #uow: UnitOfWork;
  readonly #tenant: string;
  constructor({ uow, tenant }: Cradle) {
    this.#uow = uow;
    this.#tenant = tenant;
  }
  async handle(cmd: InferMessage<typeof PlaceOrder>): Promise<string> {
    const id = `${this.#tenant}/${cmd.payload.sku}x${cmd.payload.qty}`;
    this.#uow.pending.push(id);
    // A nested query shares this dispatch's scope, so it sees the uncommitted write.
    const count = await mediator.query(CountOrders.create({}));
    return `${id} (order ${count} of the tenant)`;
  }
}

const database: string[] = [];
const container = createContainer<Cradle>({ injectionMode: InjectionMode.PROXY, strict: true });
container.register({
  database: asValue(database),
  uow: asClass(UnitOfWork)
    .scoped()
    .disposer((uow) => uow.commit()),
});

const handlers = registerHandlers(container, [
  handle(PlaceOrder, PlaceOrderHandler),
  handle(CountOrders, (_q, ctx) => {
    const { uow, tenant } = awilixScopeOf<Cradle>(ctx).cradle;
    return database.filter((id) => id.startsWith(`${tenant}/`)).length + uow.pending.length;
  }),
]);

const mediator = createMediator({
  handlers,
  container: awilixContainer(container, {
    // per-dispatch values: the tenant of the caller's execution context
    onScope: (scope, init) => scope.register({ tenant: asValue(init.execution.tenantId ?? 'public') }),
  }),
});

export async function main() {
  const placed = [
    await mediator.send(PlaceOrder.create({ sku: 'tea', qty: 2 }), { context: { tenantId: 'acme' } }),
    await mediator.send(PlaceOrder.create({ sku: 'cup', qty: 1 }), { context: { tenantId: 'acme' } }),
  ];
  for (const line of placed) console.log(line);
  return { placed, committed: [...database] };
}

if (import.meta.main) await main();
