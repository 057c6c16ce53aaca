/**
 * The orders service, composed from its parts: the mediator (write side with a unit of work and idempotency
 * keys; read side with a projected order list, a cached order lookup and a live "watch my order" stream), the
 * Fastify HTTP edge, the outbox relay, the checkout consumer, saga recovery and the projection runner. Which loops
 * run in this process is chosen by roles (`all` runs every one).
 */
import { randomUUID } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  compareLogPositions,
  connectionHealth,
  consumerHealth,
  createCacheInvalidation,
  createHealth,
  createInMemoryQueryCacheStore,
  createMediator,
  createMessageCatalog,
  createOutboxRelay,
  createProjectionRunner,
  type Health,
  handle,
  handleStream,
  isCqrsError,
  liveQuery,
  type Mediator,
  type MessageConsumer,
  NotFoundError,
  type OutboxRelay,
  type ProjectionRunner,
  pagination,
  projectionHealth,
  queryCache,
  relayHealth,
  toPage,
  validation,
} from '@cqrs-ts/core';
import { cqrsFastify } from '@cqrs-ts/fastify';
import { commandRoute, queryRoute, streamRoute } from '@cqrs-ts/http';
import { createSagaRunner, SagaFailedError, type SagaRunner } from '@cqrs-ts/saga';
import Fastify, { type FastifyInstance } from 'fastify';
import { createOrdersBroker, type OrdersBroker } from './broker.ts';
import { Checkout } from './checkout.ts';
import { checkoutProgress } from './checkout-http.ts';
import type { ServiceConfig, ServiceRole } from './config.ts';
import {
  CancelOrder,
  CheckoutProgressed,
  GetOrder,
  ListOrders,
  OrderCancelled,
  OrderClosed,
  OrderPlaced,
  type OrderUpdate,
  PlaceOrder,
  RunCheckoutStep,
  totalOf,
  WatchOrder,
} from './messages.ts';
import { createSqliteStorage } from './sqlite-storage.ts';
import type { OrdersStorage } from './storage.ts';

/** What a console package gets to mount itself on the service (see {@link ServiceOptions.mountConsole}). */
export interface ServiceParts {
  readonly app: FastifyInstance;
  readonly mediator: Mediator;
  readonly storage: OrdersStorage;
  readonly relay: OutboxRelay | undefined;
  readonly runner: ProjectionRunner | undefined;
  readonly sagas: SagaRunner;
  readonly consumer: MessageConsumer | undefined;
  readonly health: Health;
}

export interface ServiceOptions {
  readonly roles: ReadonlySet<ServiceRole>;
  /** Mounts an operator console on the app under `/console`; called before the server listens. */
  readonly mountConsole?: (parts: ServiceParts) => Promise<void> | void;
  /** Lines the service prints (start, stop, background failures). */
  readonly log?: (line: string) => void;
}

export interface RunningService {
  /** The API's base URL, when this process serves HTTP. */
  readonly url: string | undefined;
  readonly parts: ServiceParts;
  /** Graceful stop: no new requests, in-flight ones finish, loops stop, connections close. */
  stop(): Promise<void>;
}

async function openStorage(config: ServiceConfig): Promise<OrdersStorage> {
  if (config.storage.kind === 'sqlite') return createSqliteStorage(config.storage);
  const { createPostgresStorage } = await import('./postgres-storage.ts');
  return createPostgresStorage(config.storage);
}

/** Starts the roles of this process on `config`. */
export async function startOrdersService(
  config: ServiceConfig,
  options: ServiceOptions,
): Promise<RunningService> {
  const log = options.log ?? (() => {});
  const has = (role: ServiceRole) => options.roles.has('all') || options.roles.has(role);
  const storage = await openStorage(config);
  let broker: OrdersBroker | undefined;
  const closing = new AbortController();
  try {
    broker = has('relay') || has('consumer') ? await createOrdersBroker(config.broker) : undefined;
  } catch (error) {
    await storage.close();
    throw error;
  }

  const wakeUp = () => {
    const w = storage.wakeUp();
    return w === undefined ? {} : { wakeUp: w };
  };
  const cache = queryCache({
    store: createInMemoryQueryCacheStore({ maxEntries: config.cache.maxEntries }),
    // without the projection runner in this process nothing evicts on apply: keep cached orders briefly
    queries: [
      {
        query: GetOrder,
        ttlMs: has('projections') ? config.cache.ttlMs : Math.min(config.cache.ttlMs, 1_000),
        tags: (q) => [`order:${q.payload.orderId}`],
      },
    ],
  });
  const invalidation = createCacheInvalidation({
    cache,
    rules: [OrderPlaced, OrderCancelled, CheckoutProgressed].map((event) => ({
      event,
      tags: (e: { payload: { orderId: string } }) => [`order:${e.payload.orderId}`],
    })),
  });
  const runner = has('projections')
    ? createProjectionRunner({
        log: storage.log,
        store: storage.projections,
        projections: [storage.orderView],
        pollMs: 20,
        ...wakeUp(),
        onApplied: (events) => invalidation.onApplied(events),
      })
    : undefined;

  async function* watch(orderId: string, after: string | undefined, signal: AbortSignal) {
    const stop = AbortSignal.any([signal, closing.signal]);
    if (runner !== undefined) {
      for await (const item of liveQuery({
        runner,
        projection: storage.orderView.name,
        query: () => storage.getOrder(orderId),
        relevant: (e) => (e.payload as { orderId?: string }).orderId === orderId,
        ...(after === undefined ? {} : { after }),
        signal: stop,
      }))
        yield { position: item.position, order: item.value ?? null } satisfies OrderUpdate;
      return;
    }
    // another process runs the projection: follow the row's position
    let last = after;
    while (!stop.aborted) {
      const order = await storage.getOrder(orderId);
      if (order !== undefined && (last === undefined || compareLogPositions(order.position, last) > 0)) {
        last = order.position;
        yield { position: order.position, order } satisfies OrderUpdate;
      }
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }

  // checkouts this process does not drive (another process consumes the orders) are read again every 500 ms
  const checkout = checkoutProgress(
    (id, o) => sagas.watch(id, o),
    has('consumer') && has('saga-recovery')
      ? { closing: closing.signal }
      : { closing: closing.signal, recheckMs: 500 },
  );

  const mediator: Mediator = createMediator({
    behaviors: [validation(), cache, storage.unitOfWork],
    handlers: [
      handle(
        PlaceOrder,
        async (cmd, ctx) => {
          const orderId = `o-${randomUUID()}`;
          const { customerId, lines, address } = cmd.payload;
          const totalCents = totalOf(lines);
          await storage.insertOrder(ctx, { id: orderId, customerId, lines, totalCents, address });
          ctx.emit(OrderPlaced, { orderId, customerId, lines, totalCents, address });
          return { orderId };
        },
        { emits: [OrderPlaced] },
      ),
      handle(
        CancelOrder,
        async (cmd, ctx) => {
          const outcome = await storage.cancelOrder(ctx, cmd.payload.orderId);
          if (outcome === 'missing') throw new NotFoundError('order', cmd.payload.orderId);
          if (outcome !== 'placed') throw new OrderClosed(`order ${cmd.payload.orderId} is ${outcome}`);
          ctx.emit(OrderCancelled, { orderId: cmd.payload.orderId });
        },
        { emits: [OrderCancelled] },
      ),
      handle(
        RunCheckoutStep,
        async (cmd, ctx) => {
          await storage.runStep(ctx, cmd.payload, config.paymentLimitCents);
          const { orderId, step, action } = cmd.payload;
          ctx.emit(CheckoutProgressed, { orderId, step, action });
        },
        { emits: [CheckoutProgressed] },
      ),
      handle(GetOrder, async (q) => {
        const order = await storage.getOrder(q.payload.orderId);
        if (order === undefined) throw new NotFoundError('order', q.payload.orderId);
        return order;
      }),
      handle(ListOrders, async (q) => {
        const { offset, limit } = pagination(q);
        const { items, total } = await storage.listOrders(q.payload, offset, limit);
        return toPage(items, total, q.payload);
      }),
      handleStream(WatchOrder, (q, ctx) => watch(q.payload.orderId, q.payload.after, ctx.signal)),
      ...checkout.handlers,
    ],
  });

  const sagas = createSagaRunner({
    store: storage.sagas,
    sagas: [Checkout],
    mediator,
    leaseMs: config.saga.leaseMs,
    compensation: { backoff: { initialMs: 100, maxMs: 2_000 }, coolDownMs: config.saga.leaseMs },
    onError: (error) => log(`saga: ${(error as Error).message}`),
  });

  const relay = has('relay')
    ? createOutboxRelay({
        store: storage.outbox,
        publisher: broker!.publisher,
        mode: storage.relayMode,
        pollIntervalMs: 20,
        ...wakeUp(),
      })
    : undefined;

  const consumer = has('consumer')
    ? broker!.consumer('checkout', ['orders'], {
        catalog: createMessageCatalog([OrderPlaced, OrderCancelled]),
        maxAttempts: 10,
        async handle(event) {
          if (!OrderPlaced.is(event)) return;
          const { orderId, lines, totalCents } = event.payload;
          try {
            await sagas.run(Checkout, { orderId, lines, totalCents }, { id: orderId });
          } catch (error) {
            if (error instanceof SagaFailedError) return; // compensated: the order is rejected
            if (isCqrsError(error, 'CQRS_CONCURRENCY') || (error as { reason?: string }).reason === 'lease')
              return; // a redelivery: this checkout exists already (recovery finishes it if its worker died)
            throw error;
          }
        },
      })
    : undefined;

  let recovering: Promise<unknown> | undefined;
  const recovery = has('saga-recovery')
    ? setInterval(() => {
        recovering ??= sagas
          .recover({ limit: 200 })
          .catch((error: unknown) => log(`saga recovery: ${(error as Error).message}`))
          .finally(() => {
            recovering = undefined;
          });
      }, config.saga.recoverEveryMs)
    : undefined;

  const health = createHealth({
    serviceId: 'orders',
    components: [
      connectionHealth(storage.kind, () => storage.ping()),
      ...(relay === undefined ? [] : [relayHealth(relay)]),
      ...(consumer === undefined ? [] : [consumerHealth('checkout', consumer)]),
      ...(runner === undefined ? [] : [projectionHealth(runner, storage.orderView.name)]),
    ],
  });
  const app = Fastify({ forceCloseConnections: 'idle', return503OnClosing: true });
  const parts: ServiceParts = { app, mediator, storage, relay, runner, sagas, consumer, health };
  let url: string | undefined;
  const inFlight = requestCounter();
  const liveStreams = requestCounter();
  if (has('api')) {
    app.addHook('onRequest', async (request, reply) => {
      (request.url.includes('/watch') ? liveStreams : inFlight).enter(reply.raw);
    });
    await app.register(cqrsFastify, {
      mediator,
      routes: [
        commandRoute(PlaceOrder, { path: '/orders', status: 201 }),
        commandRoute(CancelOrder, { path: '/orders/:orderId/cancel' }),
        queryRoute(GetOrder, { path: '/orders/:orderId' }),
        queryRoute(ListOrders, { path: '/orders' }),
        streamRoute(WatchOrder, { path: '/orders/:orderId/watch', resumeField: 'after' }),
        ...checkout.routes,
      ],
      openapi: { path: '/openapi.json', info: { title: 'orders', version: '1.0.0' } },
      health: { health },
      onError: (error) => log(`http: ${(error as Error).message}`),
    });
    if (options.mountConsole !== undefined) await options.mountConsole(parts);
    await app.listen({ host: config.http.host, port: config.http.port });
    const address = app.server.address() as AddressInfo;
    const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
    url = `http://${host}:${address.port}`;
  }
  runner?.start();
  relay?.start();
  await consumer?.start();

  let stopping: Promise<void> | undefined;
  const stop = async () => {
    // 1. no new requests; in-flight ones finish; live streams end
    closing.abort();
    const closed = app.close();
    // in-flight requests finish; then every connection left (idle keep-alive, streams whose client stopped
    // reading) is closed, so close() resolves
    await inFlight.drained();
    let grace: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([
      liveStreams.drained(),
      new Promise((resolve) => {
        grace = setTimeout(resolve, 1_000);
      }),
    ]);
    clearTimeout(grace);
    app.server.closeAllConnections();
    await closed;
    // 2. the loops: the relay publishes nothing more; the consumer handles what it was handed (the in-memory
    // broker's queue lives in this process: drain it) and stops; recovery and projections finish their pass
    if (recovery !== undefined) clearInterval(recovery);
    await relay?.stop();
    const backlog = () => (consumer as { backlog?: number } | undefined)?.backlog ?? 0;
    while (backlog() > 0) await new Promise((resolve) => setTimeout(resolve, 10));
    await consumer?.stop();
    await recovering;
    await runner?.stop();
    // 3. connections
    health.close();
    await broker?.close();
    await storage.close();
  };
  return {
    url,
    parts,
    stop: () => {
      stopping ??= stop();
      return stopping;
    },
  };
}

/** Counts requests whose response has not finished; `drained()` resolves when none is left. */
function requestCounter() {
  let count = 0;
  let waiting: (() => void) | undefined;
  return {
    enter(response: ServerResponse) {
      count++;
      let left = false;
      const leave = () => {
        if (left) return;
        left = true;
        if (--count === 0) waiting?.();
      };
      response.once('close', leave);
    },
    drained: () =>
      count === 0
        ? Promise.resolve()
        : new Promise<void>((resolve) => {
            waiting = resolve;
          }),
  };
}
