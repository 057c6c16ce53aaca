import {
  createInMemoryBroker,
  createInMemoryConsumer,
  createInMemoryOutboxStore,
  createInMemorySagaStore,
  createInMemoryUnitOfWork,
  createMediator,
  createOutboxRelay,
  defineCommand,
  defineEvent,
  handle,
  isCqrsError,
} from '@cqrs-ts/core';
import { type CqrsInstrumentation, instrumentCqrs } from '@cqrs-ts/otel';
import { createSagaRunner, defineSaga, sagaContext } from '@cqrs-ts/saga';
import { SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createTelemetry, type Telemetry } from './support.ts';

const Place = defineCommand('otel.place').withPayload<{ fail?: boolean }>().returns<string>();
const Placed = defineEvent('otel.placed', { topic: 'otel-orders', key: () => 'k' }).withPayload<{
  n: number;
}>();
const CALLER = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';

let t: Telemetry;
let otel: CqrsInstrumentation | undefined;
beforeEach(() => {
  t = createTelemetry();
});
afterEach(async () => {
  otel?.dispose();
  otel = undefined;
  await t.close();
});

/** Resolves once `n` deliveries were handled by `consumer`'s handler. */
function deliveries() {
  const seen: { traceId: string | undefined; spanId: string | undefined }[] = [];
  let wake: (() => void) | undefined;
  return {
    seen,
    handle() {
      const sc = trace.getActiveSpan()?.spanContext();
      seen.push({ traceId: sc?.traceId, spanId: sc?.spanId });
      wake?.();
    },
    async until(n: number) {
      while (seen.length < n) await new Promise<void>((r) => (wake = r));
    },
  };
}

/** Appends the events to an outbox, relays them (one batch) through an in-memory broker, waits for the consumer. */
async function relayAndConsume(...events: ReturnType<typeof Placed.create>[]) {
  const store = createInMemoryOutboxStore();
  await store.transaction((tx) => store.append(tx, events));
  const broker = createInMemoryBroker();
  const d = deliveries();
  const consumer = createInMemoryConsumer({
    broker,
    topics: ['otel-orders'],
    name: 'billing',
    handle: d.handle,
  });
  await consumer.start();
  try {
    await createOutboxRelay({ store, publisher: broker }).runOnce();
    await d.until(events.length);
  } finally {
    await consumer[Symbol.asyncDispose]();
  }
  return d;
}

describe('instrumentCqrs', () => {
  it('makes a span per dispatch, parented by the caller trace the message carries and active in the handler', async () => {
    otel = instrumentCqrs({ tracerProvider: t.tracerProvider, meterProvider: t.meterProvider });
    expect(otel.activatesSpans).toBe(true);
    let inHandler: string | undefined;
    const mediator = createMediator({
      handlers: [
        handle(Place, (c) => {
          inHandler = trace.getActiveSpan()?.spanContext().spanId;
          if (c.payload.fail) throw new Error('refused');
          return 'ok';
        }),
      ],
    });
    const command = Place.create({}, { traceparent: CALLER });
    expect(await mediator.send(command)).toBe('ok');
    const span = t.span('cqrs.command otel.place');
    expect(span.kind).toBe(SpanKind.INTERNAL);
    expect(span.spanContext().traceId).toBe('0af7651916cd43dd8448eb211c80319c');
    expect(span.parentSpanContext?.spanId).toBe('b7ad6b7169203331');
    expect(inHandler).toBe(span.spanContext().spanId);
    expect(span.attributes).toMatchObject({
      'cqrs.message.type': 'otel.place',
      'cqrs.message.kind': 'command',
      'cqrs.request_id': command.metadata.requestId,
      'messaging.message.conversation_id': command.metadata.correlationId,
    });
    await expect(mediator.send(Place.create({ fail: true }))).rejects.toThrow('refused');
    const failed = t.spans().filter((s) => s.name === 'cqrs.command otel.place')[1]!;
    expect(failed.status).toMatchObject({ code: SpanStatusCode.ERROR, message: 'refused' });
    expect(failed.attributes['error.type']).toBe('Error');
    const durations = await t.points('cqrs.dispatch.duration');
    expect(
      durations.map((p) => [p.attributes['cqrs.message.type'], (p.value as { count: number }).count]),
    ).toEqual([
      ['otel.place', 1],
      ['otel.place', 1],
    ]);
    const failures = await t.points('cqrs.dispatch.failures');
    expect(failures.map((p) => [p.attributes, p.value])).toEqual([
      [{ 'cqrs.message.type': 'otel.place', 'cqrs.message.kind': 'command', 'error.type': 'Error' }, 1],
    ]);
  });

  it('continues the producer trace: the process span is a child of the creation context the event carries, the send span its sibling', async () => {
    otel = instrumentCqrs({
      tracerProvider: t.tracerProvider,
      meterProvider: t.meterProvider,
      messagingSystem: 'memory',
    });
    const event = Placed.create({ n: 1 }, { traceparent: CALLER });
    const d = await relayAndConsume(event);
    const send = t.span('send otel-orders');
    const process = t.span('process otel-orders');
    expect(send.kind).toBe(SpanKind.CLIENT); // the event keeps its own creation context
    expect(process.kind).toBe(SpanKind.CONSUMER);
    expect(send.spanContext().traceId).toBe('0af7651916cd43dd8448eb211c80319c');
    expect(send.parentSpanContext?.spanId).toBe('b7ad6b7169203331');
    expect(send.links.map((l) => l.context.spanId)).toEqual(['b7ad6b7169203331']);
    expect(process.spanContext().traceId).toBe('0af7651916cd43dd8448eb211c80319c');
    expect(process.parentSpanContext?.spanId).toBe('b7ad6b7169203331');
    expect(d.seen[0]).toEqual({
      traceId: '0af7651916cd43dd8448eb211c80319c',
      spanId: process.spanContext().spanId,
    });
    expect(send.attributes).toMatchObject({
      'messaging.system': 'memory',
      'messaging.operation.name': 'send',
      'messaging.operation.type': 'send',
      'messaging.destination.name': 'otel-orders',
      'messaging.batch.message_count': 1,
      'messaging.message.id': event.metadata.requestId,
      'cqrs.message.type': 'otel.placed',
      'messaging.message.conversation_id': event.metadata.correlationId,
    });
    expect(process.attributes).toMatchObject({
      'messaging.operation.type': 'process',
      'messaging.consumer.group.name': 'billing',
      'cqrs.delivery_attempt': 1,
      'cqrs.disposition': 'ack:handled',
    });
    expect((await t.points('messaging.client.sent.messages')).map((p) => p.value)).toEqual([1]);
    expect(
      (await t.points('messaging.client.consumed.messages')).map((p) => p.attributes['cqrs.disposition']),
    ).toEqual(['ack:handled']);
  });

  it('makes one send span per relayed batch, linked to each creation context; an event without one carries the span', async () => {
    otel = instrumentCqrs({ tracerProvider: t.tracerProvider, meterProvider: t.meterProvider });
    const OTHER = '00-1af7651916cd43dd8448eb211c80319c-c7ad6b7169203331-01';
    const d = await relayAndConsume(
      Placed.create({ n: 1 }, { traceparent: CALLER }),
      Placed.create({ n: 2 }, { traceparent: CALLER }),
      Placed.create({ n: 3 }, { traceparent: OTHER }),
      Placed.create({ n: 4 }),
    );
    const sends = t.spans().filter((s) => s.name.startsWith('send'));
    expect(sends.map((s) => s.name)).toEqual(['send otel-orders']);
    const send = sends[0]!;
    expect(send.kind).toBe(SpanKind.PRODUCER); // the creation context of the event that had none
    expect(send.attributes['messaging.batch.message_count']).toBe(4);
    expect(send.attributes['messaging.message.id']).toBeUndefined();
    expect(send.links.map((l) => l.context.spanId)).toEqual(['b7ad6b7169203331', 'c7ad6b7169203331']);
    expect(d.seen.map((s) => s.traceId)).toEqual([
      '0af7651916cd43dd8448eb211c80319c',
      '0af7651916cd43dd8448eb211c80319c',
      '1af7651916cd43dd8448eb211c80319c',
      send.spanContext().traceId,
    ]);
    const last = t.spans().filter((s) => s.name === 'process otel-orders')[3]!;
    expect(last.parentSpanContext?.spanId).toBe(send.spanContext().spanId);
    expect((await t.points('messaging.client.sent.messages')).map((p) => p.value)).toEqual([4]);
  });

  it('in link mode starts a new trace per delivery, linked to the creation context', async () => {
    otel = instrumentCqrs({ tracerProvider: t.tracerProvider, consumerTraceMode: 'link' });
    await relayAndConsume(Placed.create({ n: 1 }, { traceparent: CALLER }));
    const process = t.span('process otel-orders');
    expect(process.spanContext().traceId).not.toBe('0af7651916cd43dd8448eb211c80319c');
    expect(process.parentSpanContext).toBeUndefined();
    expect(process.links.map((l) => l.context.spanId)).toEqual(['b7ad6b7169203331']);
  });

  it('counts dead letters and reports the outbox backlog of the relays it is given', async () => {
    const store = createInMemoryOutboxStore();
    const relay = createOutboxRelay({ store, publisher: createInMemoryBroker() });
    otel = instrumentCqrs({
      tracerProvider: t.tracerProvider,
      meterProvider: t.meterProvider,
      relays: { main: relay },
    });
    await store.transaction((tx) => store.append(tx, [Placed.create({ n: 1 }), Placed.create({ n: 2 })]));
    expect((await t.points('cqrs.outbox.backlog')).map((p) => [p.attributes['cqrs.relay'], p.value])).toEqual(
      [['main', 2]],
    );
    expect((await t.points('cqrs.outbox.oldest_pending.age'))[0]!.value).toBeGreaterThanOrEqual(0);

    const broker = createInMemoryBroker();
    let failures = 0;
    const consumer = createInMemoryConsumer({
      broker,
      topics: ['otel-orders'],
      name: 'fragile',
      maxAttempts: 1,
      handle: () => {
        failures++;
        throw new Error('poison');
      },
    });
    await consumer.start();
    try {
      await createOutboxRelay({ store, publisher: broker }).runOnce();
      while ((await t.points('cqrs.consumer.dead_letters')).length === 0 || failures < 2)
        await new Promise((r) => setImmediate(r));
    } finally {
      await consumer[Symbol.asyncDispose]();
    }
    expect((await t.points('cqrs.consumer.dead_letters')).map((p) => p.value)).toEqual([2]);
    expect(t.span('process otel-orders').attributes['cqrs.disposition']).toBe('dead-letter');
  });

  it('traces outbox appends and saga steps as the active context of their work', async () => {
    otel = instrumentCqrs({ tracerProvider: t.tracerProvider, meterProvider: t.meterProvider });
    const uow = createInMemoryUnitOfWork();
    const mediator = createMediator({
      behaviors: [uow],
      handlers: [
        handle(Place, (_c, ctx) => {
          ctx.emit(Placed, { n: 1 });
          return 'ok';
        }),
      ],
    });
    const C = sagaContext<{ n: number }>();
    const saga = defineSaga({
      name: 'checkout',
      context: C,
      steps: [
        C.step({ id: 'place', act: () => mediator.send(Place.create({})), compensate: () => {} }),
        C.step({ id: 'fail', act: () => Promise.reject(new Error('no stock')) }),
      ],
    });
    await createSagaRunner({ store: createInMemorySagaStore() })
      .run(saga, { n: 1 })
      .catch(() => {});
    const step = t.span('cqrs.saga act checkout/place');
    const command = t.span('cqrs.command otel.place');
    const append = t.span('cqrs.outbox append');
    expect(command.parentSpanContext?.spanId).toBe(step.spanContext().spanId);
    expect(append.parentSpanContext?.spanId).toBe(command.spanContext().spanId);
    expect(append.attributes['messaging.batch.message_count']).toBe(1);
    expect(step.attributes).toMatchObject({ 'cqrs.saga.name': 'checkout', 'cqrs.saga.step': 'place' });
    expect(t.span('cqrs.saga act checkout/fail').status.code).toBe(SpanStatusCode.ERROR);
    t.span('cqrs.saga compensate checkout/place');
    const compensations = await t.points('cqrs.saga.compensations');
    expect(compensations.map((p) => [p.attributes['cqrs.outcome'], p.value])).toEqual([['ok', 1]]);
    expect((await t.points('cqrs.outbox.appended')).map((p) => p.value)).toEqual([1]);
  });

  it('stops making spans once disposed, and refuses an unknown consumer trace mode', async () => {
    const mediator = createMediator({ handlers: [handle(Place, () => 'ok')] });
    const instrumentation = instrumentCqrs({ tracerProvider: t.tracerProvider });
    instrumentation[Symbol.dispose]();
    instrumentation.dispose();
    await mediator.send(Place.create({}));
    expect(t.spans()).toEqual([]);
    let error: unknown;
    try {
      instrumentCqrs({ consumerTraceMode: 'child' as 'link' });
    } catch (e) {
      error = e;
    }
    expect(isCqrsError(error, 'CQRS_CONFIGURATION')).toBe(true);
  });
});
