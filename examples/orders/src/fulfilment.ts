/**
 * Fulfilment of an order as an event-sourced aggregate, on embedded SQLite: its state is rebuilt from its own
 * stream (`fulfilment-<orderId>`) by a pure `evolve`, and each command appends the events `decide` returns with
 * the version it loaded. Stock is a state-based aggregate: a row with a version. The handlers read and write both
 * through the repositories with their context: the unit of work opens the transaction, appends and commits; no
 * handler has transaction or outbox code. A lost race (two packers, one order) is re-run by `retry`.
 */
import type { DatabaseSync } from 'node:sqlite';
import {
  createEventSourcedRepository,
  createMediator,
  defineCommand,
  defineEvent,
  handle,
  type InferMessage,
  isConcurrencyError,
  retry,
} from '@cqrs-ts/core';
import {
  createSqliteEventStore,
  createSqliteStateRepository,
  createSqliteUnitOfWork,
  migrate,
} from '@cqrs-ts/sqlite';

export const FulfilmentStarted = defineEvent('fulfilment.started', { topic: 'fulfilment' }).withPayload<{
  orderId: string;
  skus: string[];
}>();
export const LinePacked = defineEvent('fulfilment.line-packed', { topic: 'fulfilment' }).withPayload<{
  orderId: string;
  sku: string;
}>();
export const OrderShipped = defineEvent('fulfilment.shipped', { topic: 'fulfilment' }).withPayload<{
  orderId: string;
}>();
export type FulfilmentEvent = InferMessage<
  typeof FulfilmentStarted | typeof LinePacked | typeof OrderShipped
>;

export const StartFulfilment = defineCommand('fulfilment.start').withPayload<{
  orderId: string;
  skus: string[];
}>();
export const PackLine = defineCommand('fulfilment.pack-line')
  .withPayload<{ orderId: string; sku: string }>()
  .returns<number>();
export const ShipOrder = defineCommand('fulfilment.ship').withPayload<{ orderId: string }>();
export const Restock = defineCommand('stock.restock').withPayload<{ sku: string; quantity: number }>();
export type FulfilmentCommand = InferMessage<typeof StartFulfilment | typeof PackLine | typeof ShipOrder>;

export interface Fulfilment {
  readonly status: 'none' | 'packing' | 'shipped';
  readonly skus: readonly string[];
  readonly packed: readonly string[];
}

/** A command that does not fit the order's state. */
export class FulfilmentRefused extends Error {
  override readonly name = 'FulfilmentRefused';
}

export const initialFulfilment = (): Fulfilment => ({ status: 'none', skus: [], packed: [] });

export function evolveFulfilment(state: Fulfilment, event: FulfilmentEvent): Fulfilment {
  if (FulfilmentStarted.is(event)) return { ...state, status: 'packing', skus: event.payload.skus };
  if (LinePacked.is(event)) return { ...state, packed: [...state.packed, event.payload.sku] };
  return { ...state, status: 'shipped' };
}

export function decideFulfilment(command: FulfilmentCommand, state: Fulfilment): FulfilmentEvent[] {
  const { orderId } = command.payload;
  if (StartFulfilment.is(command)) {
    if (state.status !== 'none') return []; // already started: a retried command changes nothing
    return [FulfilmentStarted.create({ orderId, skus: command.payload.skus })];
  }
  if (state.status === 'none') throw new FulfilmentRefused(`order ${orderId} is not being fulfilled`);
  if (state.status === 'shipped') throw new FulfilmentRefused(`order ${orderId} has shipped`);
  if (PackLine.is(command)) {
    const { sku } = command.payload;
    if (!state.skus.includes(sku)) throw new FulfilmentRefused(`order ${orderId} has no line ${sku}`);
    if (state.packed.includes(sku)) return [];
    return [LinePacked.create({ orderId, sku })];
  }
  const missing = state.skus.filter((sku) => !state.packed.includes(sku));
  if (missing.length > 0) throw new FulfilmentRefused(`order ${orderId} still needs ${missing.join(', ')}`);
  return [OrderShipped.create({ orderId })];
}

/** The fulfilment service over a SQLite connection: its mediator, event store and stock repository. */
export function createFulfilmentService(database: DatabaseSync) {
  migrate(database);
  database.exec(
    'CREATE TABLE IF NOT EXISTS stock (sku TEXT PRIMARY KEY, version INTEGER NOT NULL, on_hand INTEGER NOT NULL)',
  );
  const eventStore = createSqliteEventStore({ database, source: 'orders-service' });
  const fulfilments = createEventSourcedRepository({
    name: 'fulfilment',
    store: eventStore,
    events: [FulfilmentStarted, LinePacked, OrderShipped],
    initialState: initialFulfilment,
    evolve: evolveFulfilment,
    snapshots: { every: 50 },
  });
  const stock = createSqliteStateRepository<{ onHand: number }>({
    name: 'stock',
    table: 'stock',
    idColumn: 'sku',
    columns: ['on_hand'],
    toRow: (s) => ({ on_hand: s.onHand }),
    fromRow: (row) => ({ onHand: Number(row.on_hand) }),
  });
  const unitOfWork = createSqliteUnitOfWork({ database, outbox: eventStore.outbox });
  const mediator = createMediator({
    behaviors: [retry({ maxAttempts: 3, retryOn: isConcurrencyError }), unitOfWork],
    handlers: [
      handle(Restock, async (cmd, ctx) => {
        await stock.update(ctx, cmd.payload.sku, (s) => ({
          onHand: (s?.onHand ?? 0) + cmd.payload.quantity,
        }));
      }),
      handle(StartFulfilment, async (cmd, ctx) => {
        await fulfilments.update(ctx, cmd.payload.orderId, (state) => decideFulfilment(cmd, state));
      }),
      handle(PackLine, async (cmd, ctx) => {
        const { orderId, sku } = cmd.payload;
        const { events, state } = await fulfilments.update(ctx, orderId, (s) => decideFulfilment(cmd, s));
        if (events.length > 0) {
          await stock.update(ctx, sku, (s) => {
            if (s === undefined || s.onHand < 1) throw new FulfilmentRefused(`${sku} is out of stock`);
            return { onHand: s.onHand - 1 };
          });
        }
        return state.packed.length;
      }),
      handle(ShipOrder, async (cmd, ctx) => {
        await fulfilments.update(ctx, cmd.payload.orderId, (state) => decideFulfilment(cmd, state));
      }),
    ],
  });
  return { mediator, eventStore, fulfilments, stock };
}
