/**
 * `observe` NATS cases, with `instrumentCqrs()` (tracing and metrics, the SDK of `telemetry.ts`) or without.
 *
 * - `relay`: the `broker` suite's NATS relay case (a pre-filled SQLite outbox drained through
 *   `createNatsPublisher`, batches of 1000); traced, every message gets a `send` span whose traceparent goes out.
 * - `consume`: 20,000 events published with `publishEvents` (each with a traceparent, as relayed events carry),
 *   then drained by `createNatsConsumer` (concurrency 32): messages handled per second.
 */
import type { AnyEvent } from '@cqrs-ts/core';
import { createNatsConsumer, createNatsPublisher, ensureNatsStream } from '@cqrs-ts/nats';
import { instrumentCqrs } from '@cqrs-ts/otel';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
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

/** Runs `fn` with the instrumentation on (`traced`) or off; reports `per_s` and `ns_per_op` (ns per message). */
async function withTracing(traced: boolean, fn: () => Promise<Metrics>): Promise<Metrics> {
  const sdk = traced ? createSdk() : undefined;
  const otel =
    sdk === undefined
      ? undefined
      : instrumentCqrs({
          tracerProvider: sdk.tracerProvider,
          meterProvider: sdk.meterProvider,
          messagingSystem: 'nats',
        });
  try {
    const m = await fn();
    return { ...m, ns_per_op: 1e9 / m.per_s! };
  } finally {
    otel?.dispose();
    await sdk?.close();
  }
}

export const relay = (traced: boolean): Promise<Metrics> => withTracing(traced, () => natsCases.relay());

export const consume = (traced: boolean): Promise<Metrics> =>
  withTracing(traced, async () => {
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
      const consumer = createNatsConsumer({
        connection: nc,
        stream,
        name: 'bench',
        concurrency: 32,
        deadLetter: { stream: false },
        handle: () => {
          handled++;
          if (handled === WARM) started = performance.now();
          if (handled === WARM + COUNT) done();
        },
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
