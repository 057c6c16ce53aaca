import 'reflect-metadata';
import {
  type DispatchContext,
  defineCommand,
  defineEvent,
  defineQuery,
  type InferMessage,
  type Mediator,
  type ScopeInit,
} from '@cqrs-ts/core';
import { CQRS_MEDIATOR, CqrsModule, MessageHandler } from '@cqrs-ts/nestjs';
import { Inject, Injectable, Module, Scope } from '@nestjs/common';
import { NestFactory, REQUEST } from '@nestjs/core';

const PlaceOrder = defineCommand('orders.place').withPayload<{ sku: string }>().returns<string>();
const CountOrders = defineQuery('orders.count').withPayload<Record<string, never>>().returns<number>();
const OrderPlaced = defineEvent('orders.placed').withPayload<{ id: string }>();

/** A singleton: the application's one store. */
@Injectable()
class OrderStore {
  readonly rows: { tenant: string; id: string }[] = [];
  readonly receipts: string[] = [];
}

/** Request-scoped: one per top-level dispatch; REQUEST is the dispatch's message and execution context. */
@Injectable({ scope: Scope.REQUEST })
class Tenant {
  readonly id: string;
  constructor(@Inject(REQUEST) request: ScopeInit) {
    this.id = request.execution.tenantId ?? 'public';
  }
}

@Injectable()
@MessageHandler(PlaceOrder)
class PlaceOrderHandler {
  readonly #store: OrderStore;
  readonly #tenant: Tenant;
  readonly #mediator: Mediator;
  constructor(store: OrderStore, tenant: Tenant, @Inject(CQRS_MEDIATOR) mediator: Mediator) {
    this.#store = store;
    this.#tenant = tenant;
    this.#mediator = mediator;
  }
  async handle(cmd: InferMessage<typeof PlaceOrder>, ctx: DispatchContext): Promise<string> {
    const id = `${this.#tenant.id}-${cmd.payload.sku}`;
    this.#store.rows.push({ tenant: this.#tenant.id, id });
    ctx.emit(OrderPlaced, { id });
    // nested: same dispatch scope, so the same Tenant instance
    const count = await this.#mediator.query(CountOrders.create({}));
    return `${id} (${count} for ${this.#tenant.id})`;
  }
}

@Injectable()
@MessageHandler(CountOrders)
class CountOrdersHandler {
  readonly #store: OrderStore;
  readonly #tenant: Tenant;
  constructor(store: OrderStore, tenant: Tenant) {
    this.#store = store;
    this.#tenant = tenant;
  }
  handle(): number {
    return this.#store.rows.filter((row) => row.tenant === this.#tenant.id).length;
  }
}

@Injectable()
@MessageHandler(OrderPlaced)
class SendReceipt {
  readonly #store: OrderStore;
  constructor(store: OrderStore) {
    this.#store = store;
  }
  handle(event: InferMessage<typeof OrderPlaced>): void {
    this.#store.receipts.push(event.payload.id);
  }
}

@Module({
  imports: [CqrsModule.forRoot()],
  providers: [OrderStore, Tenant, PlaceOrderHandler, CountOrdersHandler, SendReceipt],
})
class AppModule {}

export async function main() {
  const app = await NestFactory.createApplicationContext(AppModule, { logger: false });
  try {
    const mediator = app.get<Mediator>(CQRS_MEDIATOR);
    const placed = [
      await mediator.send(PlaceOrder.create({ sku: 'tea' }), { context: { tenantId: 'acme' } }),
      await mediator.send(PlaceOrder.create({ sku: 'cup' }), { context: { tenantId: 'acme' } }),
      await mediator.send(PlaceOrder.create({ sku: 'pot' }), { context: { tenantId: 'globex' } }),
    ];
    return { placed, receipts: app.get(OrderStore).receipts };
  } finally {
    await app.close();
  }
}
