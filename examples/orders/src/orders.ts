import {
  authorization,
  createMediator,
  defineCommand,
  defineEvent,
  definePaginatedQuery,
  defineQuery,
  defineStreamQuery,
  handle,
  handleStream,
  hasRole,
  type Logger,
  logging,
  on,
  type Page,
  pagination,
  retry,
  timeout,
  toPage,
  validation,
} from '@cqrs-ts/core';
import { z } from 'zod';

export interface Order {
  readonly id: string;
  readonly customerId: string;
  readonly lines: readonly { readonly sku: string; readonly quantity: number }[];
  readonly status: 'placed' | 'cancelled';
}

export const PlaceOrder = defineCommand('orders.place-order', {
  schema: z.object({
    customerId: z.string().min(1),
    lines: z.array(z.object({ sku: z.string().min(1), quantity: z.number().int().positive() })).min(1),
  }),
  description: 'Places a new order for a customer',
}).returns<{ orderId: string }>();

export const OrderPlaced = defineEvent('orders.order-placed', {
  topic: 'orders',
  key: (p: { orderId: string }) => p.orderId,
  category: 'notification',
}).withPayload<{ orderId: string; customerId: string }>();

/** Streams a customer's orders one at a time. */
export const ExportOrders = defineStreamQuery('orders.export-orders', {
  schema: z.object({ customerId: z.string() }),
}).yields<Order>();

export const CancelOrder = defineCommand('orders.cancel-order', {
  schema: z.object({ orderId: z.string() }),
  authorize: (_cmd, ctx) =>
    hasRole(ctx.execution, 'support') || {
      allowed: false,
      reason: 'only support staff may cancel',
      code: 'role',
    },
});

export const GetOrder = defineQuery('orders.get-order', {
  schema: z.object({ orderId: z.string() }),
}).returns<Order | null>();

export const ListOrders = definePaginatedQuery('orders.list-orders', {
  schema: z.object({ customerId: z.string().optional() }),
  maxPageSize: 50,
}).returns<Page<Order>>();

/** Reads stock from a flaky warehouse: fails twice, then answers. Shows the retry behavior at work. */
export const CheckStock = defineQuery('inventory.check-stock', {
  schema: z.object({ sku: z.string() }),
}).returns<number>();

/** Builds the orders mediator on an in-memory store. */
export function createOrdersService(logger: Logger, onEvent: (line: string) => void = () => {}) {
  const orders = new Map<string, Order>();
  let warehouseCalls = 0;
  const mediator = createMediator({
    messages: [PlaceOrder, CancelOrder, GetOrder, ListOrders, CheckStock, ExportOrders],
    behaviors: [logging({ logger, level: 'info' }), validation(), authorization(), retry(), timeout()],
    handlers: [
      handle(
        PlaceOrder,
        async (cmd, ctx) => {
          for (const line of cmd.payload.lines) {
            const stock = await mediator.query(CheckStock.create({ sku: line.sku }));
            if (stock < line.quantity) throw new Error(`not enough ${line.sku} in stock`);
          }
          const orderId = `ord-${orders.size + 1}`;
          orders.set(orderId, { id: orderId, ...cmd.payload, status: 'placed' });
          ctx.emit(OrderPlaced, { orderId, customerId: cmd.payload.customerId });
          return { orderId };
        },
        { emits: [OrderPlaced] },
      ),
      on(OrderPlaced, function sendConfirmation(e) {
        onEvent(
          `confirmation e-mail for ${e.payload.orderId} (caused by ${e.metadata.causationId?.slice(0, 13)}…)`,
        );
      }),
      on(OrderPlaced, function updateSalesStats(e) {
        onEvent(`sales statistics updated for ${e.payload.customerId}`);
      }),
      handleStream(ExportOrders, async function* exportOrders(q) {
        for (const order of orders.values()) if (order.customerId === q.payload.customerId) yield order;
      }),
      handle(CancelOrder, (cmd) => {
        const order = orders.get(cmd.payload.orderId);
        if (order) orders.set(order.id, { ...order, status: 'cancelled' });
      }),
      handle(GetOrder, (q) => orders.get(q.payload.orderId) ?? null),
      handle(ListOrders, (q) => {
        const all = [...orders.values()].filter(
          (o) => !q.payload.customerId || o.customerId === q.payload.customerId,
        );
        const { offset, limit } = pagination(q);
        return toPage(all.slice(offset, offset + limit), all.length, q.payload);
      }),
      handle(
        CheckStock,
        () => {
          warehouseCalls++;
          if (warehouseCalls % 3 !== 0) throw new Error('warehouse timeout');
          return 100;
        },
        { retries: 3, timeout: 1_000, backoff: { initialMs: 5, jitter: 'none' } },
      ),
    ],
  });
  return mediator;
}
