/** What the service needs from its database; `sqlite-storage.ts` and `postgres-storage.ts` implement it. */
import type { AnyEvent, AnyProjection, DispatchContext, EventLog, UnitOfWork } from '@cqrs-ts/core';
import type { OutboxStore, OutboxWakeUp, ProjectionStore, SagaStore } from '@cqrs-ts/core/spi';
import {
  CheckoutProgressed,
  OrderCancelled,
  type OrderLine,
  type OrderStatus,
  type OrderView,
  type RunCheckoutStep,
} from './messages.ts';

export interface NewOrder {
  readonly id: string;
  readonly customerId: string;
  readonly lines: readonly OrderLine[];
  readonly totalCents: number;
  readonly address: string;
}

export interface OrdersStorage {
  readonly kind: 'sqlite' | 'postgres';
  /** The commands' transaction behavior (with idempotency keys). */
  readonly unitOfWork: UnitOfWork<unknown>;
  readonly log: EventLog;
  readonly outbox: OutboxStore;
  readonly projections: ProjectionStore<unknown>;
  /** The projected order list (`order_view`), written in the runner's transaction. */
  readonly orderView: AnyProjection;
  readonly sagas: SagaStore;
  /**
   * The relay's mode. Postgres: `lease`, because a `transaction`-mode batch stays open while it publishes, and the
   * projection runner reads this outbox as its log: an open write transaction holds the log's horizon, so every
   * order placed meanwhile would wait for the batch to reach the broker before it is projected.
   */
  readonly relayMode: 'lease' | 'auto';
  /** Wakes the relay and the projection runner on commit, where the database can. */
  wakeUp(): OutboxWakeUp | undefined;
  insertOrder(ctx: DispatchContext, order: NewOrder): Promise<void>;
  /** Marks the order cancelled if it is `placed`; returns its status before, or `missing`. */
  cancelOrder(ctx: DispatchContext, orderId: string): Promise<'missing' | OrderStatus>;
  /** Runs a checkout step's effect in the command's transaction. @throws CheckoutRefused */
  runStep(
    ctx: DispatchContext,
    step: ReturnType<typeof RunCheckoutStep.create>['payload'],
    paymentLimitCents: number,
  ): Promise<void>;
  getOrder(id: string): Promise<OrderView | undefined>;
  listOrders(
    filter: { readonly customerId?: string | undefined; readonly status?: OrderStatus | undefined },
    offset: number,
    limit: number,
  ): Promise<{ items: OrderView[]; total: number }>;
  /** Counts for tests and the load test: orders, projected orders by status, sagas by status, outbox backlog. */
  stats(): Promise<{
    orders: number;
    projected: Record<string, number>;
    sagas: Record<string, number>;
    pending: number;
    payments: number;
    refunds: number;
  }>;
  /** A round trip to the database (for the readiness check). */
  ping(): Promise<void>;
  close(): Promise<void>;
}

/** The projection's status after a checkout event (shared by both dialects). */
export function nextStatus(current: OrderStatus, step: string, action: 'act' | 'compensate'): OrderStatus {
  if (current === 'cancelled' || current === 'rejected' || current === 'shipped') return current;
  if (action === 'compensate') return step === 'open' ? 'rejected' : current;
  if (step === 'reserve-stock') return 'stock-reserved';
  if (step === 'charge') return 'paid';
  if (step === 'ship') return 'shipped';
  return current;
}

/** An `order_view` row as a view. */
export function toView(r: Record<string, unknown>): OrderView {
  return {
    id: String(r.id),
    customerId: String(r.customer_id),
    lines: JSON.parse(String(r.lines)) as OrderLine[],
    totalCents: Number(r.total_cents),
    status: String(r.status) as OrderStatus,
    steps: JSON.parse(String(r.steps)) as string[],
    position: String(r.position),
  };
}

/** The status and steps (JSON) of an `order_view` row after a cancel or checkout event. */
export function evolveView(
  row: Record<string, unknown>,
  event: AnyEvent,
): { status: OrderStatus; steps: string } {
  let status = String(row.status) as OrderStatus;
  const steps = JSON.parse(String(row.steps)) as string[];
  if (OrderCancelled.is(event)) {
    if (status !== 'shipped' && status !== 'rejected') status = 'cancelled';
  } else if (CheckoutProgressed.is(event)) {
    const { step, action } = event.payload;
    status = nextStatus(status, step, action);
    steps.push(`${step} ${action === 'act' ? 'done' : 'compensated'}`);
  }
  return { status, steps: JSON.stringify(steps) };
}
