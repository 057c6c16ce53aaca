import {
  AggregateRoot,
  createMediator,
  currentContext,
  defineBehavior,
  defineCommand,
  defineEvent,
  type ErrorInfo,
  EventDepthExceededError,
  EventDispatchError,
  handle,
  type InferMessage,
  on,
  retry,
} from '@cqrs-ts/core';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';

const OrderPlaced = defineEvent('orders.order-placed', {
  topic: 'orders',
  key: (p: { orderId: string }) => p.orderId,
}).withPayload<{ orderId: string }>();
const ReceiptSent = defineEvent('orders.receipt-sent').withPayload<{ orderId: string }>();
const PlaceOrder = defineCommand('orders.place')
  .withPayload<{ orderId: string; fail?: boolean }>()
  .returns<string>();

const tick = () => new Promise((r) => setTimeout(r, 1));

// Fails the test if any promise rejection goes unhandled while it runs.
let unhandled: unknown[] = [];
const onUnhandled = (reason: unknown) => unhandled.push(reason);
beforeEach(() => {
  unhandled = [];
  process.on('unhandledRejection', onUnhandled);
});
afterEach(async () => {
  // Node reports unhandled rejections after the microtask queue drains, before the next macrotask.
  await new Promise((r) => setImmediate(r));
  process.off('unhandledRejection', onUnhandled);
  expect(unhandled).toEqual([]);
});

describe('domain events from command handlers', () => {
  it('dispatches recorded events only after the handler and its pipeline succeeded', async () => {
    const seen: string[] = [];
    let outerDone = false;
    const mediator = createMediator({
      behaviors: [
        defineBehavior(
          'unit-of-work',
          async (m, c, next) => {
            const r = await next(m, c);
            seen.push('commit');
            outerDone = true;
            return r;
          },
          { kinds: ['command'] },
        ),
      ],
      handlers: [
        handle(PlaceOrder, (cmd, ctx) => {
          ctx.emit(OrderPlaced, { orderId: cmd.payload.orderId });
          if (cmd.payload.fail) throw new Error('rejected');
          return cmd.payload.orderId;
        }),
        on(OrderPlaced, (e) => {
          expect(outerDone).toBe(true);
          seen.push(`placed:${e.payload.orderId}`);
        }),
      ],
    });
    expect(await mediator.send(PlaceOrder.create({ orderId: 'o1' }))).toBe('o1');
    expect(seen).toEqual(['commit', 'placed:o1']);
    seen.length = 0;
    outerDone = false;
    await expect(mediator.send(PlaceOrder.create({ orderId: 'o2', fail: true }))).rejects.toThrow('rejected');
    expect(seen).toEqual([]);
  });

  it('links events to the request: causation = its request id, correlation = its correlation id', async () => {
    let received: InferMessage<typeof OrderPlaced> | undefined;
    let ambient: unknown;
    const mediator = createMediator({
      handlers: [
        handle(PlaceOrder, (cmd, ctx) => {
          ctx.record(OrderPlaced.create({ orderId: cmd.payload.orderId }));
          return 'ok';
        }),
        on(OrderPlaced, (e) => {
          received = e;
          ambient = currentContext();
        }),
      ],
    });
    const cmd = PlaceOrder.create({ orderId: 'o1' }, { correlationId: 'corr-1', tenantId: 't1' });
    await mediator.send(cmd);
    expect(received?.metadata).toMatchObject({
      correlationId: 'corr-1',
      causationId: cmd.metadata.requestId,
      tenantId: 't1',
    });
    expect(received).toMatchObject({ topic: 'orders', key: 'o1' });
    expect(ambient).toMatchObject({ correlationId: 'corr-1', requestId: received?.metadata.requestId });

    const viaEmit = createMediator({
      handlers: [
        handle(PlaceOrder, (c, ctx) => {
          ctx.emit(OrderPlaced, { orderId: c.payload.orderId });
          return 'ok';
        }),
        on(OrderPlaced, (e) => {
          received = e;
        }),
      ],
    });
    const cmd2 = PlaceOrder.create({ orderId: 'o2' }, { correlationId: 'corr-2' });
    await viaEmit.send(cmd2);
    expect(received?.metadata).toMatchObject({
      correlationId: 'corr-2',
      causationId: cmd2.metadata.requestId,
    });
  });

  it('discards events recorded by failed attempts when retried', async () => {
    const got: string[] = [];
    let attempt = 0;
    const mediator = createMediator({
      behaviors: [retry({ maxAttempts: 3, backoff: { initialMs: 1 } })],
      handlers: [
        handle(PlaceOrder, (cmd, ctx) => {
          attempt++;
          ctx.emit(OrderPlaced, { orderId: `${cmd.payload.orderId}-attempt${attempt}` });
          if (attempt < 3) throw new Error('transient');
          return 'ok';
        }),
        on(OrderPlaced, (e) => {
          got.push(e.payload.orderId);
        }),
      ],
    });
    await mediator.send(PlaceOrder.create({ orderId: 'o' }));
    expect(got).toEqual(['o-attempt3']);
  });

  it('pulls events from tracked aggregates exactly once', async () => {
    class Order extends AggregateRoot<InferMessage<typeof OrderPlaced> | InferMessage<typeof ReceiptSent>> {
      status = 'new';
      readonly id: string;
      constructor(id: string) {
        super();
        this.id = id;
      }
      place() {
        this.raise(OrderPlaced.create({ orderId: this.id }));
      }
      sendReceipt() {
        this.raise(ReceiptSent.create({ orderId: this.id }));
      }
      protected apply(event: InferMessage<typeof OrderPlaced> | InferMessage<typeof ReceiptSent>) {
        this.status = OrderPlaced.is(event) ? 'placed' : 'receipted';
      }
    }
    const order = new Order('o9');
    const got: string[] = [];
    const mediator = createMediator({
      handlers: [
        handle(PlaceOrder, (_c, ctx) => {
          ctx.track(order);
          order.place();
          order.sendReceipt();
          return order.status;
        }),
        on(OrderPlaced, (e) => {
          got.push(e.type);
        }),
        on(ReceiptSent, (e) => {
          got.push(e.type);
        }),
      ],
    });
    expect(await mediator.send(PlaceOrder.create({ orderId: 'o9' }))).toBe('receipted');
    expect(got).toEqual(['orders.order-placed', 'orders.receipt-sent']);
    expect(order.version).toBe(2);
    expect(order.pullEvents()).toEqual([]);
    const rebuilt = new Order('o9').loadFromHistory([OrderPlaced.create({ orderId: 'o9' })]);
    expect([rebuilt.status, rebuilt.version, rebuilt.pendingEvents.length]).toEqual(['placed', 1, 0]);
  });

  it('reports a failing event handler but still answers the caller (default policy)', async () => {
    const errors: [unknown, ErrorInfo][] = [];
    const mediator = createMediator({
      onError: (error, info) => errors.push([error, info]),
      handlers: [
        handle(PlaceOrder, (c, ctx) => {
          ctx.emit(OrderPlaced, { orderId: c.payload.orderId });
          return 'done';
        }),
        on(OrderPlaced, function sendEmail() {
          throw new Error('smtp down');
        }),
        on(OrderPlaced, function updateStats() {}),
      ],
    });
    expect(await mediator.send(PlaceOrder.create({ orderId: 'o1' }))).toBe('done');
    expect(errors).toHaveLength(1);
    expect(errors[0]![1]).toMatchObject({
      handler: 'sendEmail',
      phase: 'awaited',
      event: { type: 'orders.order-placed' },
    });
  });

  it('fails the dispatch with the documented policy option', async () => {
    const mediator = createMediator({
      events: { failurePolicy: 'fail' },
      onError: () => {},
      handlers: [
        handle(PlaceOrder, (c, ctx) => {
          ctx.emit(OrderPlaced, { orderId: c.payload.orderId });
          return 'done';
        }),
        on(OrderPlaced, function sendEmail() {
          throw new Error('smtp down');
        }),
      ],
    });
    const error = await mediator.send(PlaceOrder.create({ orderId: 'o1' })).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(EventDispatchError);
    expect((error as EventDispatchError).failures.map((f) => f.handler)).toEqual(['sendEmail']);
  });
});

describe('publish', () => {
  it('runs every handler; failures are isolated, reported, and aggregated naming each handler', async () => {
    const ran: string[] = [];
    const reported: string[] = [];
    const mediator = createMediator({
      onError: (_e, info) => reported.push(info.handler),
      handlers: [
        on(OrderPlaced, function a() {
          ran.push('a');
          throw new Error('a failed');
        }),
        on(OrderPlaced, async function b() {
          await tick();
          ran.push('b');
        }),
        on(OrderPlaced, async function c() {
          await tick();
          ran.push('c');
          throw new Error('c failed');
        }),
      ],
    });
    const error = await mediator.publish(OrderPlaced.create({ orderId: 'o' })).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(EventDispatchError);
    expect(
      (error as EventDispatchError).failures.map((f) => [f.handler, (f.error as Error).message]),
    ).toEqual([
      ['a', 'a failed'],
      ['c', 'c failed'],
    ]);
    expect(ran.sort()).toEqual(['a', 'b', 'c']);
    expect(reported.sort()).toEqual(['a', 'c']);
  });

  it('limits parallelism', async () => {
    let running = 0;
    let peak = 0;
    const handler = async () => {
      running++;
      peak = Math.max(peak, running);
      await tick();
      running--;
    };
    const handlers = Array.from({ length: 10 }, () => on(OrderPlaced, handler));
    const mediator = createMediator({ handlers, events: { concurrency: 3 } });
    await mediator.publish(OrderPlaced.create({ orderId: 'o' }));
    expect(peak).toBe(3);
    peak = 0;
    await mediator.publish(OrderPlaced.create({ orderId: 'o' }), { concurrency: 7 });
    expect(peak).toBe(7);
    peak = 0;
    await mediator.publish(OrderPlaced.create({ orderId: 'o' }), { strategy: 'sequential' });
    expect(peak).toBe(1);
  });

  it('runs sequentially in registration order', async () => {
    const order: number[] = [];
    const mediator = createMediator({
      handlers: [1, 2, 3].map((n) =>
        on(OrderPlaced, async () => {
          // handlers that end in reverse order (the subject)
          await new Promise((r) => setTimeout(r, 4 - n));
          order.push(n);
        }),
      ),
    });
    await mediator.publish(OrderPlaced.create({ orderId: 'o' }), { strategy: 'sequential' });
    expect(order).toEqual([1, 2, 3]);
  });

  it('fire-and-forget resolves at once; whenIdle waits for all of it, failures go to onError', async () => {
    const done: string[] = [];
    const errors: ErrorInfo[] = [];
    const mediator = createMediator({
      onError: (_e, info) => errors.push(info),
      handlers: [
        on(OrderPlaced, async (e, ctx) => {
          await tick();
          done.push('placed');
          ctx.emit(ReceiptSent, { orderId: e.payload.orderId });
        }),
        on(ReceiptSent, async () => {
          await tick();
          done.push('receipt');
          throw new Error('late failure');
        }),
      ],
    });
    await mediator.publish(OrderPlaced.create({ orderId: 'o' }), { strategy: 'fire-and-forget' });
    expect(done).toEqual([]);
    await mediator.whenIdle();
    expect(done).toEqual(['placed', 'receipt']);
    expect(errors).toEqual([
      expect.objectContaining({ handler: 'orders.receipt-sent handler', phase: 'background' }),
    ]);
  });

  it('fail-fast aborts siblings and waits for them before answering', async () => {
    let siblingAborted = false;
    let siblingFinished = false;
    const mediator = createMediator({
      onError: () => {},
      handlers: [
        on(OrderPlaced, async () => {
          await tick();
          throw new Error('first');
        }),
        on(OrderPlaced, async (_e, ctx) => {
          await new Promise<void>((resolve) =>
            ctx.signal.addEventListener('abort', () => {
              siblingAborted = true;
              resolve();
            }),
          );
          await tick();
          siblingFinished = true;
        }),
      ],
    });
    await expect(
      mediator.publish(OrderPlaced.create({ orderId: 'o' }), { failFast: true }),
    ).rejects.toBeInstanceOf(EventDispatchError);
    expect(siblingAborted).toBe(true);
    expect(siblingFinished).toBe(true);
  });

  it('never leaves a sibling running unobserved after a failed parallel dispatch', async () => {
    let siblingDone = false;
    const mediator = createMediator({
      events: { failurePolicy: 'fail' },
      onError: () => {},
      handlers: [
        handle(PlaceOrder, (c, ctx) => {
          ctx.emit(OrderPlaced, { orderId: c.payload.orderId });
          return 'x';
        }),
        on(OrderPlaced, () => {
          throw new Error('fast failure');
        }),
        on(OrderPlaced, async () => {
          await new Promise((r) => setTimeout(r, 20)); // the slow sibling is the subject: it ends after the failure
          siblingDone = true;
        }),
      ],
    });
    await expect(mediator.send(PlaceOrder.create({ orderId: 'o' }))).rejects.toBeInstanceOf(
      EventDispatchError,
    );
    expect(siblingDone).toBe(true);
  });

  it('dispatches events produced by event handlers, and stops a cycle at the depth limit', async () => {
    const Ping = defineEvent('t.ping').withPayload<{ n: number }>();
    const seen: number[] = [];
    const errors: unknown[] = [];
    const mediator = createMediator({
      events: { maxDepth: 5 },
      onError: (e) => errors.push(e),
      handlers: [
        on(Ping, (e, ctx) => {
          seen.push(e.payload.n);
          ctx.emit(Ping, { n: e.payload.n + 1 });
        }),
      ],
    });
    const error = await mediator.publish(Ping.create({ n: 1 })).catch((e: unknown) => e);
    expect(seen).toEqual([1, 2, 3, 4, 5]);
    expect(error).toBeInstanceOf(EventDispatchError);
    expect((error as EventDispatchError).errors[0]).toBeInstanceOf(EventDepthExceededError);
    expect(errors[0]).toBeInstanceOf(EventDepthExceededError);
  });

  it('resolves with no handlers, rejects non-events, and survives a throwing error hook', async () => {
    const mediator = createMediator({
      onError: () => {
        throw new Error('hook bug');
      },
      handlers: [
        on(ReceiptSent, () => {
          throw new Error('x');
        }),
      ],
    });
    await expect(mediator.publish(OrderPlaced.create({ orderId: 'o' }))).resolves.toBeUndefined();
    await expect(mediator.publish(PlaceOrder.create({ orderId: 'o' }) as never)).rejects.toMatchObject({
      code: 'CQRS_WRONG_MESSAGE_KIND',
    });
    await expect(mediator.publish({} as never)).rejects.toMatchObject({ code: 'CQRS_INVALID_MESSAGE' });
    await expect(mediator.publish(ReceiptSent.create({ orderId: 'o' }))).rejects.toBeInstanceOf(
      EventDispatchError,
    );
    await expect(
      mediator.publish(ReceiptSent.create({ orderId: 'o' }), { strategy: 'nope' as never }),
    ).rejects.toThrow(/strategy/);
    expect(() => createMediator({ events: { concurrency: 0 } })).toThrow(/concurrency/);
  });

  it('runs event handlers through behaviors targeted at events, and class handlers through the resolver', async () => {
    const trace: string[] = [];
    class AuditHandler {
      handle(e: InferMessage<typeof OrderPlaced>) {
        trace.push(`audit:${e.payload.orderId}`);
      }
    }
    const mediator = createMediator({
      behaviors: [
        defineBehavior(
          'events-only',
          (m, c, next) => {
            trace.push(`behavior:${c.handler.name}`);
            return next(m, c);
          },
          { kinds: ['event'] },
        ),
      ],
      handlers: [on(OrderPlaced, AuditHandler), handle(PlaceOrder, () => 'x')],
    });
    await mediator.publish(OrderPlaced.create({ orderId: 'o' }));
    await mediator.send(PlaceOrder.create({ orderId: 'o' }));
    expect(trace).toEqual(['behavior:AuditHandler', 'audit:o']);
    expect(mediator.describe().map((h) => [h.mode, h.messageType])).toEqual([
      ['request', 'orders.place'],
      ['event', 'orders.order-placed'],
    ]);
  });

  it('refuses an event type that also has a request handler, and events in send()', () => {
    expect(() => on(PlaceOrder as never, () => {})).toThrow(/command/);
  });
});
