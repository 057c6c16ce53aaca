/**
 * The orders service's messages: commands and queries over HTTP, the events it writes through the outbox, and the
 * commands each checkout saga step sends (each in its own unit of work, with the step's idempotency key).
 */
import {
  defineCommand,
  defineEvent,
  definePaginatedQuery,
  defineQuery,
  defineStreamQuery,
  type Page,
} from '@cqrs-ts/core';
import type { SagaProgress, SagaStepProgress } from '@cqrs-ts/saga';
import { z } from 'zod';

/** The catalogue: unit prices in cents. `RARE-1` has little stock; `LAMP-9` costs more than a card may pay. */
export const CATALOGUE = {
  'BOOK-1': 1_500,
  'MUG-3': 900,
  'PEN-2': 250,
  'RARE-1': 4_000,
  'LAMP-9': 250_000,
} as const;
export type Sku = keyof typeof CATALOGUE;
const SKUS = Object.keys(CATALOGUE) as [Sku, ...Sku[]];

export interface OrderLine {
  readonly sku: Sku;
  readonly quantity: number;
}

export const ORDER_STATUSES = [
  'placed',
  'stock-reserved',
  'paid',
  'shipped',
  'cancelled',
  'rejected',
] as const;
export type OrderStatus = (typeof ORDER_STATUSES)[number];

/** An order as the read side shows it: the projected row. */
export interface OrderView {
  readonly id: string;
  readonly customerId: string;
  readonly lines: readonly OrderLine[];
  readonly totalCents: number;
  readonly status: OrderStatus;
  /** What the checkout did so far, e.g. `reserve-stock done`, `charge compensated`. */
  readonly steps: readonly string[];
  /** The log position of the last event applied to it. */
  readonly position: string;
}

const lineSchema = z.object({ sku: z.enum(SKUS), quantity: z.number().int().min(1).max(1000) });

export const PlaceOrder = defineCommand('orders.place-order', {
  schema: z.object({
    customerId: z.string().min(1).max(64),
    lines: z.array(lineSchema).min(1).max(50),
    address: z.string().min(1).max(200),
  }),
  result: z.object({ orderId: z.string() }),
  description: 'Places an order; its checkout (reserve stock, charge, ship) runs in the background',
}).returns<{ orderId: string }>();

export const CancelOrder = defineCommand('orders.cancel-order', {
  schema: z.object({ orderId: z.string().min(1).max(64) }),
  description: 'Cancels an order that has not shipped; its checkout is compensated',
});

export const GetOrder = defineQuery('orders.get-order', {
  schema: z.object({ orderId: z.string().min(1).max(64) }),
  description: 'One order from the read model (cached; evicted when the read model applies its events)',
}).returns<OrderView>();

export const ListOrders = definePaginatedQuery('orders.list-orders', {
  schema: z.object({ customerId: z.string().max(64).optional(), status: z.enum(ORDER_STATUSES).optional() }),
  maxPageSize: 100,
  description: 'The projected order list, newest first',
}).returns<Page<OrderView>>();

/** One answer of the watch stream: the order at a log position (the SSE event id). */
export interface OrderUpdate {
  readonly position: string;
  readonly order: OrderView | null;
}

export const WatchOrder = defineStreamQuery('orders.watch-order', {
  schema: z.object({
    orderId: z.string().min(1).max(64),
    after: z
      .string()
      .regex(/^\d{1,40}(\.\d{1,40})?$/)
      .optional(),
  }),
  description: 'The order now, then again each time its checkout moves on (Server-Sent Events)',
}).yields<OrderUpdate>();

/** Where an order's checkout saga is: its status and the steps logged so far. */
export interface CheckoutStatus {
  readonly orderId: string;
  readonly status: string;
  /** Forward steps completed. */
  readonly cursor: number;
  readonly steps: readonly SagaStepProgress[];
}

export const GetCheckout = defineQuery('orders.get-checkout', {
  schema: z.object({ orderId: z.string().min(1).max(64) }),
  description: "The order's checkout saga now: status and logged steps (404 before the checkout started)",
}).returns<CheckoutStatus>();

export const WatchCheckout = defineStreamQuery('orders.watch-checkout', {
  schema: z.object({
    orderId: z.string().min(1).max(64),
    /** The last seen event id (a saga log sequence): resume after it. */
    after: z.number().int().min(0).optional(),
  }),
  description: "The order's checkout saga as it runs: each logged step and each state (Server-Sent Events)",
}).yields<SagaProgress>();

export const OrderPlaced = defineEvent('orders.order-placed', {
  topic: 'orders',
  key: (p: { orderId: string }) => p.orderId,
}).withPayload<{
  orderId: string;
  customerId: string;
  lines: OrderLine[];
  totalCents: number;
  address: string;
}>();

export const OrderCancelled = defineEvent('orders.order-cancelled', {
  topic: 'orders',
  key: (p: { orderId: string }) => p.orderId,
}).withPayload<{ orderId: string }>();

/** A checkout step ran (`act`) or was undone (`compensate`). */
export const CheckoutProgressed = defineEvent('orders.checkout-progressed', {
  topic: 'checkout',
  key: (p: { orderId: string }) => p.orderId,
}).withPayload<{ orderId: string; step: CheckoutStep; action: 'act' | 'compensate' }>();

export const CHECKOUT_STEPS = ['open', 'reserve-stock', 'charge', 'ship'] as const;
export type CheckoutStep = (typeof CHECKOUT_STEPS)[number];

/** What a saga step does to the order's tables; each runs in its own unit of work. */
export const RunCheckoutStep = defineCommand('checkout.run-step').withPayload<{
  orderId: string;
  step: CheckoutStep;
  action: 'act' | 'compensate';
  lines: OrderLine[];
  totalCents: number;
}>();

/** A step's business refusal (out of stock, card declined, order cancelled): the checkout is compensated. */
export class CheckoutRefused extends Error {
  override readonly name = 'CheckoutRefused';
  readonly problem = { status: 409, type: 'https://cqrs-ts.dev/problems/checkout-refused', title: 'Refused' };
}

/** The order cannot be cancelled any more (it shipped or was rejected). */
export class OrderClosed extends Error {
  override readonly name = 'OrderClosed';
  readonly problem = {
    status: 409,
    type: 'https://cqrs-ts.dev/problems/order-closed',
    title: 'Order closed',
  };
}

export const totalOf = (lines: readonly OrderLine[]) =>
  lines.reduce((sum, l) => sum + CATALOGUE[l.sku] * l.quantity, 0);
