/**
 * Core's tracing events on `diagnostics_channel`: dispatch, consume and relay publish carry their context object,
 * report success and failure, and nothing is published (no context built) while nobody listens.
 */
import { subscribe, tracingChannel, unsubscribe } from 'node:diagnostics_channel';
import {
  createInMemoryBroker,
  createInMemoryConsumer,
  createInMemoryEventStore,
  createInMemoryOutboxStore,
  createInMemoryProjectionStore,
  createInMemoryUnitOfWork,
  createMediator,
  createOutboxRelay,
  createProjectionRunner,
  DIAGNOSTICS_CHANNELS,
  defineCommand,
  defineDocumentProjection,
  defineEvent,
  handle,
  TRACING_CHANNELS,
} from '@cqrs-ts/core';
import { describe, expect, it } from 'vitest';
import { waitFor } from './support/services.ts';

const Place = defineCommand('trace.place').withPayload<{ fail: boolean }>().returns<string>();
const Placed = defineEvent('trace.placed', { topic: 'trace-topic', key: () => 'k' }).withPayload<{
  n: number;
}>();

/** Subscribes to every sub-channel of `name`; returns what each saw (the context object) and an unsubscribe. */
function record(name: string) {
  const seen: { event: string; context: Record<string, unknown> }[] = [];
  const on = (event: string) => (context: unknown) =>
    seen.push({ event, context: { ...(context as Record<string, unknown>) } });
  const handlers = {
    start: on('start'),
    end: on('end'),
    asyncStart: on('asyncStart'),
    asyncEnd: on('asyncEnd'),
    error: on('error'),
  };
  const channel = tracingChannel(name);
  channel.subscribe(handlers);
  return { seen, off: () => channel.unsubscribe(handlers) };
}

describe('tracing channels', () => {
  it('cqrs-ts:dispatch carries type, kind, handler and ids, and the result or the error', async () => {
    const mediator = createMediator({
      handlers: [
        handle(Place, async (c) => {
          if (c.payload.fail) throw new Error('refused');
          return 'ok';
        }),
      ],
    });
    const rec = record(TRACING_CHANNELS.dispatch);
    try {
      const command = Place.create({ fail: false });
      expect(await mediator.send(command)).toBe('ok');
      await expect(mediator.send(Place.create({ fail: true }))).rejects.toThrow('refused');
      const events = rec.seen.map((s) => s.event);
      expect(events).toEqual([
        'start',
        'end',
        'asyncStart',
        'asyncEnd',
        'start',
        'end',
        'error',
        'asyncStart',
        'asyncEnd',
      ]);
      expect(rec.seen[0]!.context).toMatchObject({
        messageType: 'trace.place',
        kind: 'command',
        requestId: command.metadata.requestId,
        correlationId: command.metadata.correlationId,
      });
      expect(typeof rec.seen[0]!.context.handler).toBe('string');
      expect(rec.seen[3]!.context.result).toBe('ok');
      expect((rec.seen[6]!.context.error as Error).message).toBe('refused');
    } finally {
      rec.off();
    }
    // nobody listening: nothing published
    expect(await mediator.send(Place.create({ fail: false }))).toBe('ok');
    expect(rec.seen).toHaveLength(9);
  });

  it('cqrs-ts:relay.publish carries the batch and cqrs-ts:consume each delivery with its trace context', async () => {
    const store = createInMemoryOutboxStore();
    const tx = store.begin();
    const event = Placed.create(
      { n: 1 },
      { traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01' },
    );
    await store.append(tx, [event]);
    tx.commit();
    const broker = createInMemoryBroker();
    const relay = createOutboxRelay({ store, publisher: broker });
    let handled = 0;
    const consumer = createInMemoryConsumer({
      broker,
      topics: ['trace-topic'],
      name: 'trace-consumer',
      handle: () => {
        handled++;
      },
    });
    const published = record(TRACING_CHANNELS.relayPublish);
    const consumed = record(TRACING_CHANNELS.consume);
    try {
      await consumer.start();
      await relay.runOnce();
      await waitFor(
        () => handled === 1 && consumed.seen.some((s) => s.event === 'asyncEnd'),
        5000,
        'the delivery',
      );
      const batch = published.seen.find((s) => s.event === 'start')!.context;
      expect(batch.relayId).toEqual(expect.any(String));
      const messages = batch.messages as { type: string; topic: string; headers: Record<string, string> }[];
      expect(messages.map((m) => [m.type, m.topic, m.headers.traceparent])).toEqual([
        ['trace.placed', 'trace-topic', event.metadata.traceparent],
      ]);
      expect(published.seen.map((s) => s.event)).toContain('asyncEnd');
      const delivery = consumed.seen.find((s) => s.event === 'start')!.context;
      expect(delivery).toMatchObject({
        messageType: 'trace.placed',
        destination: 'trace-topic',
        consumer: 'trace-consumer',
        deliveryAttempt: 1,
        correlationId: event.metadata.correlationId,
        traceparent: event.metadata.traceparent,
      });
      expect(delivery.messageId).toBe((batch.messages as { id: string }[])[0]!.id);
    } finally {
      published.off();
      consumed.off();
      await consumer[Symbol.asyncDispose]();
    }
  });

  it('cqrs-ts:projection.batch carries the projection, the checkpoint move and the batch size', async () => {
    const outbox = createInMemoryOutboxStore();
    const log = createInMemoryEventStore({ outbox });
    const store = createInMemoryProjectionStore();
    const counts = defineDocumentProjection<{ n: number }>({
      name: 'trace-counts',
      events: [Placed],
      documentId: () => 'all',
      evolve: (doc) => ({ n: (doc?.n ?? 0) + 1 }),
    });
    const runner = createProjectionRunner({ log, store, projections: [counts] });
    await outbox.transaction((tx) => outbox.append(tx, [Placed.create({ n: 1 }), Placed.create({ n: 2 })]));
    const rec = record(TRACING_CHANNELS.projectionBatch);
    try {
      await runner.catchUp();
    } finally {
      rec.off();
      await runner[Symbol.asyncDispose]();
    }
    const starts = rec.seen.filter((s) => s.event === 'start').map((s) => s.context);
    expect(starts.map((c) => [c.projection, c.size])).toEqual([['trace-counts', 2]]);
    expect(starts[0]!.from).not.toBe(starts[0]!.to);
    expect(rec.seen.map((s) => s.event)).toContain('asyncEnd');
  });

  it('cqrs-ts:dispatch carries the caller trace context of the message', async () => {
    const mediator = createMediator({ handlers: [handle(Place, () => 'ok')] });
    const rec = record(TRACING_CHANNELS.dispatch);
    try {
      await mediator.send(
        Place.create(
          { fail: false },
          { traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01' },
        ),
      );
    } finally {
      rec.off();
    }
    expect(rec.seen[0]!.context).toMatchObject({
      traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',
      tracestate: undefined,
    });
  });

  it('cqrs-ts:dispatch: what a subscriber writes into the carrier is the trace context of the events the handler makes', async () => {
    const Made = defineEvent('trace.made').withPayload<{ n: number }>();
    const events: { traceparent: string | undefined; tracestate: string | undefined }[] = [];
    const uow = createInMemoryUnitOfWork();
    const mediator = createMediator({
      behaviors: [uow],
      handlers: [
        handle(Place, (_c, ctx) => {
          ctx.emit(Placed, { n: 1 });
          const made = Made.create({ n: 2 });
          events.push({ traceparent: made.metadata.traceparent, tracestate: made.metadata.tracestate });
          return 'ok';
        }),
      ],
    });
    const span = '00-0af7651916cd43dd8448eb211c80319c-00f067aa0ba902b7-01';
    const channel = tracingChannel<unknown, { carrier: Record<string, string> }>(TRACING_CHANNELS.dispatch);
    const handlers = {
      start: (c: { carrier: Record<string, string> }) => {
        c.carrier.traceparent = span;
        c.carrier.tracestate = 'vendor=1';
      },
      end() {},
      asyncStart() {},
      asyncEnd() {},
      error() {},
    };
    channel.subscribe(handlers);
    try {
      await mediator.send(
        Place.create(
          { fail: false },
          { traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01' },
        ),
      );
    } finally {
      channel.unsubscribe(handlers);
    }
    expect(events).toEqual([{ traceparent: span, tracestate: 'vendor=1' }]);
    expect(uow.outbox.records().map((r) => [r.headers.traceparent, r.headers.tracestate])).toEqual([
      [span, 'vendor=1'],
    ]);
    // nobody listening: the handler's events carry the command's own trace context
    await mediator.send(
      Place.create(
        { fail: false },
        { traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01' },
      ),
    );
    expect(events[1]!.traceparent).toBe('00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01');
  });

  it('cqrs-ts:outbox.append carries the events a unit of work stages, and the dispatch they come from', async () => {
    const uow = createInMemoryUnitOfWork();
    const mediator = createMediator({
      behaviors: [uow],
      handlers: [
        handle(Place, (_c, ctx) => {
          ctx.emit(Placed, { n: 1 });
          ctx.emit(Placed, { n: 2 });
          return 'ok';
        }),
      ],
    });
    const rec = record(TRACING_CHANNELS.outboxAppend);
    const command = Place.create({ fail: false });
    try {
      await mediator.send(command);
    } finally {
      rec.off();
    }
    expect(rec.seen.map((s) => s.event)).toEqual(['start', 'end', 'asyncStart', 'asyncEnd']);
    const c = rec.seen[0]!.context;
    expect(c.messageType).toBe('trace.place');
    expect(c.correlationId).toBe(command.metadata.correlationId);
    expect((c.events as { type: string; payload: unknown }[]).map((e) => e.payload)).toEqual([
      { n: 1 },
      { n: 2 },
    ]);
    expect(uow.outbox.records()).toHaveLength(2);
  });

  it('cqrs-ts:relay.publish sends what a subscriber writes into a carrier in that message headers, not the stored row', async () => {
    const store = createInMemoryOutboxStore();
    await store.transaction((tx) => store.append(tx, [Placed.create({ n: 1 }), Placed.create({ n: 2 })]));
    const broker = createInMemoryBroker();
    const relay = createOutboxRelay({ store, publisher: broker });
    const seen: (string | undefined)[] = [];
    const consumer = createInMemoryConsumer({
      broker,
      topics: ['trace-topic'],
      name: 'carrier-consumer',
      handle: (_e, { cloudEvent }) => {
        seen.push(cloudEvent.traceparent as string | undefined);
      },
    });
    const injected = '00-11111111111111111111111111111111-2222222222222222-01';
    const channel = tracingChannel<unknown, { carriers: Record<string, string>[] }>(
      TRACING_CHANNELS.relayPublish,
    );
    const handlers = {
      start: (c: { carriers: Record<string, string>[] }) => {
        c.carriers[1]!.traceparent = injected;
      },
      end() {},
      asyncStart() {},
      asyncEnd() {},
      error() {},
    };
    channel.subscribe(handlers);
    try {
      await consumer.start();
      await relay.runOnce();
      await waitFor(() => seen.length === 2, 5000, 'both deliveries');
    } finally {
      channel.unsubscribe(handlers);
      await consumer[Symbol.asyncDispose]();
    }
    expect(seen).toEqual([undefined, injected]);
    expect(store.records().map((r) => r.headers.traceparent)).toEqual([undefined, undefined]);
  });

  it('cqrs-ts:consume.disposition reports how each delivery was settled', async () => {
    const broker = createInMemoryBroker();
    const consumer = createInMemoryConsumer({
      broker,
      topics: ['trace-topic'],
      name: 'disposition-consumer',
      maxAttempts: 1,
      handle: (e) => {
        if ((e.payload as { n: number }).n === 2) throw new Error('refused');
      },
    });
    const seen: Record<string, unknown>[] = [];
    const listener = (m: unknown) => seen.push(m as Record<string, unknown>);
    subscribe(DIAGNOSTICS_CHANNELS.consumeDisposition, listener);
    const first = Placed.create({ n: 1 });
    try {
      await consumer.start();
      const store = createInMemoryOutboxStore();
      await store.transaction((tx) => store.append(tx, [first, Placed.create({ n: 2 })]));
      await createOutboxRelay({ store, publisher: broker }).runOnce();
      await waitFor(() => seen.length === 2, 5000, 'both dispositions');
    } finally {
      unsubscribe(DIAGNOSTICS_CHANNELS.consumeDisposition, listener);
      await consumer[Symbol.asyncDispose]();
    }
    expect(seen.map((d) => [d.messageType, d.action, d.outcome])).toEqual([
      ['trace.placed', 'ack', 'handled'],
      ['trace.placed', 'dead-letter', undefined],
    ]);
    expect(seen[0]).toMatchObject({
      consumer: 'disposition-consumer',
      destination: 'trace-topic',
      deliveryAttempt: 1,
    });
    expect(typeof seen[0]!.messageId).toBe('string');
  });
});
