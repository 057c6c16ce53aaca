/**
 * `observe` NATS cases, with `instrumentCqrs()` (tracing and metrics, the SDK of `telemetry.ts`) or without.
 *
 * - `relay`: the `broker` suite's NATS relay case (a pre-filled SQLite outbox drained through
 *   `createNatsPublisher`, batches of 1000); traced, every message gets a `send` span whose traceparent goes out.
 * - `consume`: 20,000 events published with `publishEvents` (each with a traceparent, as relayed events carry),
 *   then drained by `createNatsConsumer` (concurrency 32): messages handled per second.
 * - `consume` hand-traced: no instrumentation; the handler does by hand what a user who wanted the same telemetry
 *   would write: a CONSUMER span (same name and attributes) under the event's `traceparent`, made active around
 *   the handler, and the process-duration histogram (same attributes), with the same SDK. It is the floor of what
 *   tracing a message costs with the OpenTelemetry SDK, whoever writes it.
 */
import type { AnyEvent } from '@cqrs-ts/core';
import { createNatsConsumer, createNatsPublisher, ensureNatsStream } from '@cqrs-ts/nats';
import { instrumentCqrs } from '@cqrs-ts/otel';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { context, SpanKind, trace } from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import type { Metrics } from '../../lib/types.ts';
import { PAD, Ticked } from '../broker/common.ts';
import { cases as natsCases } from '../broker/nats.ts';
import { createSdk } from './telemetry.ts';

const URL = process.env.CQRS_NATS_URL ?? '127.0.0.1:4222';
const COUNT = 20_000;
const WARM = 1_000;

export async function skipReason(): Promise<string | undefined> {
  return natsCases.skipReason();
}

type Sdk = ReturnType<typeof createSdk>;
/** How a case is traced: not at all, by `instrumentCqrs()`, or by hand in the handler (the SDK without it). */
export type Tracing = 'untraced' | 'traced' | 'hand-traced';

/** Runs `fn` with the instrumentation on (`traced`) or off; reports `per_s` and `ns_per_op` (ns per message). */
async function withTracing(
  tracing: Tracing,
  fn: (sdk: Sdk | undefined) => Promise<Metrics>,
): Promise<Metrics> {
  const sdk = tracing === 'untraced' ? undefined : createSdk();
  const otel =
    sdk === undefined || tracing !== 'traced'
      ? undefined
      : instrumentCqrs({
          tracerProvider: sdk.tracerProvider,
          meterProvider: sdk.meterProvider,
          messagingSystem: 'nats',
        });
  try {
    const m = await fn(sdk);
    if (sdk !== undefined) console.log(`note: ${await sdk.exported()} spans encoded and exported`);
    return { ...m, ns_per_op: 1e9 / m.per_s! };
  } finally {
    otel?.dispose();
    await sdk?.close();
  }
}

export const relay = (tracing: Tracing): Promise<Metrics> => withTracing(tracing, () => natsCases.relay());

/** The handler of the hand-traced case: a span and a histogram record per message, as a user would write them. */
function handTraced(sdk: Sdk, destination: string, consumer: string, inner: () => void) {
  const tracer = sdk.tracerProvider.getTracer('bench');
  const duration = sdk.meterProvider
    .getMeter('bench')
    .createHistogram('messaging.process.duration', { unit: 's' });
  const propagator = new W3CTraceContextPropagator();
  const getter = {
    keys: (c: Record<string, string | undefined>) => Object.keys(c),
    get: (c: Record<string, string | undefined>, k: string) => c[k],
  };
  return (event: AnyEvent) => {
    const started = performance.now();
    const m = event.metadata;
    const parent = propagator.extract(
      context.active(),
      { traceparent: m.traceparent, tracestate: m.tracestate },
      getter,
    );
    const span = tracer.startSpan(
      `process ${destination}`,
      {
        kind: SpanKind.CONSUMER,
        attributes: {
          'messaging.system': 'nats',
          'messaging.operation.name': 'process',
          'messaging.operation.type': 'process',
          'messaging.destination.name': destination,
          'messaging.consumer.group.name': consumer,
          'messaging.message.id': m.requestId,
          'messaging.message.conversation_id': m.correlationId,
          'cqrs.message.type': event.type,
          'cqrs.delivery_attempt': 1,
        },
      },
      parent,
    );
    context.with(trace.setSpan(parent, span), inner);
    span.end();
    duration.record((performance.now() - started) / 1000, {
      'messaging.system': 'nats',
      'messaging.operation.name': 'process',
      'messaging.destination.name': destination,
      'messaging.consumer.group.name': consumer,
      'cqrs.message.type': event.type,
    });
  };
}

export const consume = (tracing: Tracing): Promise<Metrics> =>
  withTracing(tracing, async (sdk) => {
    const nc = await connect({ servers: URL, timeout: 2000 });
    const stream = `BENCHOBS_${process.pid}_${Math.floor(Math.random() * 1e6)}`;
    const prefix = stream.toLowerCase();
    const jsm = await jetstreamManager(nc);
    try {
      await ensureNatsStream({ connection: nc, name: stream, subjects: [`${prefix}.>`], storage: 'file' });
      const publisher = await createNatsPublisher({ connection: nc, subjectPrefix: prefix });
      const traceparent = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
      const events = Array.from(
        { length: WARM + COUNT },
        (_, n) =>
          ({
            ...Ticked.create({ k: `k${n % 100}`, n, t: 0, pad: PAD }, { traceparent }),
            topic: 'bench',
          }) as AnyEvent,
      );
      for (let i = 0; i < events.length; i += 1000) await publisher.publishEvents(events.slice(i, i + 1000));
      await publisher.close();
      let handled = 0;
      let started = 0;
      let done!: () => void;
      const finished = new Promise<void>((resolve) => (done = resolve));
      const count = () => {
        handled++;
        if (handled === WARM) started = performance.now();
        if (handled === WARM + COUNT) done();
      };
      const consumer = createNatsConsumer({
        connection: nc,
        stream,
        name: 'bench',
        concurrency: 32,
        deadLetter: { stream: false },
        handle: tracing === 'hand-traced' ? handTraced(sdk!, `${prefix}.bench`, 'bench', count) : count,
      });
      await consumer.start();
      await finished;
      const seconds = (performance.now() - started) / 1000;
      await consumer.stop();
      return { per_s: COUNT / seconds };
    } finally {
      await jsm.streams.delete(stream).catch(() => undefined);
      await jsm.streams.delete(`${stream}_DLQ`).catch(() => undefined);
      await nc.close();
    }
  });
