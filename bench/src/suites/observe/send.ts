/**
 * `observe` send cases: `mediator.send(Ping.create({ n: 1 }))` to the dispatch suite's trivial handler.
 *
 * - `diagnostics-off`: a copy of core whose `hasSubscribers` guards are compiled out (see `core-copy-hooks.mjs`).
 * - `no-subscriber`: an unchanged copy of core, loaded the same way, with nobody listening to its channels.
 * - `otel`: `instrumentCqrs()` with the SDK of `telemetry.ts` (AsyncLocalStorage context manager, batch span
 *   processor, an exporter that encodes OTLP/protobuf); metrics go to the global no-op meter provider.
 * - `prometheus-off`: the same send on core as is, nobody listening.
 * - `prometheus`: `createPrometheusMetrics({ registry })` subscribed (the dispatch histogram by type, kind, outcome).
 * - `empty-subscriber`: a subscriber to `cqrs-ts:dispatch` that does nothing (core's traced path alone).
 * - `hand-written-histogram`: no subscriber; a prom-client histogram with the same labels timed around the send.
 * - `hand-written`: no instrumentation; `tracer.startActiveSpan` with the same name and attributes around the same
 *   `send`, ended when it settles (same SDK).
 */
import { tracingChannel } from 'node:diagnostics_channel';
import { register } from 'node:module';
import { createMediator, handle, TRACING_CHANNELS } from '@cqrs-ts/core';
import { instrumentCqrs } from '@cqrs-ts/otel';
import { createPrometheusMetrics } from '@cqrs-ts/prometheus';
import { SpanKind, SpanStatusCode } from '@opentelemetry/api';
import { Histogram, Registry } from 'prom-client';
import type { AsyncOpCase } from '../../lib/types.ts';
import { Ping, type PingResult, pingHandler } from '../dispatch/ping.ts';
import { createSdk } from './telemetry.ts';

type CoreModule = typeof import('@cqrs-ts/core');

/** A separate copy of core: `on` unchanged, `off` with its diagnostics compiled out. */
async function coreCopy(copy: 'on' | 'off'): Promise<CoreModule> {
  register(new URL('./core-copy-hooks.mjs', import.meta.url));
  const index = new URL(`../../../../packages/core/src/index.ts?cqrs-copy=${copy}`, import.meta.url);
  return (await import(index.href)) as CoreModule;
}

export async function setup(variant: string): Promise<AsyncOpCase> {
  switch (variant) {
    case 'diagnostics-off':
    case 'no-subscriber': {
      const core = await coreCopy(variant === 'no-subscriber' ? 'on' : 'off');
      const CopyPing = core.defineCommand('bench.ping').withPayload<{ n: number }>().returns<PingResult>();
      const mediator = core.createMediator({
        handlers: [core.handle(CopyPing, async (c) => ({ ok: true, n: c.payload.n }))],
      });
      return { op: () => mediator.send(CopyPing.create({ n: 1 })) };
    }
    case 'otel': {
      const sdk = createSdk();
      const otel = instrumentCqrs({ tracerProvider: sdk.tracerProvider });
      const mediator = createMediator({ handlers: [handle(Ping, pingHandler)] });
      return {
        op: () => mediator.send(Ping.create({ n: 1 })),
        close: async () => {
          otel.dispose();
          await sdk.close();
        },
      };
    }
    case 'prometheus-off': {
      const mediator = createMediator({ handlers: [handle(Ping, pingHandler)] });
      return { op: () => mediator.send(Ping.create({ n: 1 })) };
    }
    case 'prometheus': {
      const metrics = createPrometheusMetrics({ registry: new Registry() });
      const mediator = createMediator({ handlers: [handle(Ping, pingHandler)] });
      return { op: () => mediator.send(Ping.create({ n: 1 })), close: async () => metrics.close() };
    }
    case 'empty-subscriber': {
      // what core's traced path costs by itself: a subscriber that does nothing
      const channel = tracingChannel(TRACING_CHANNELS.dispatch);
      const handlers = { start() {}, end() {}, asyncStart() {}, asyncEnd() {}, error() {} };
      channel.subscribe(handlers);
      const mediator = createMediator({ handlers: [handle(Ping, pingHandler)] });
      return {
        op: () => mediator.send(Ping.create({ n: 1 })),
        close: async () => {
          channel.unsubscribe(handlers);
        },
      };
    }
    case 'hand-written-histogram': {
      const histogram = new Histogram({
        name: 'bench_dispatch_duration_seconds',
        help: 'hand-written',
        labelNames: ['message_type', 'kind', 'outcome'],
        buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
        registers: [new Registry()],
      });
      const mediator = createMediator({ handlers: [handle(Ping, pingHandler)] });
      const op = () => {
        const command = Ping.create({ n: 1 });
        const started = performance.now();
        const labels = { message_type: command.type, kind: 'command' };
        return mediator.send(command).then(
          (result) => {
            histogram.observe({ ...labels, outcome: 'ok' }, (performance.now() - started) / 1000);
            return result;
          },
          (error: unknown) => {
            histogram.observe({ ...labels, outcome: 'error' }, (performance.now() - started) / 1000);
            throw error;
          },
        );
      };
      return { op };
    }
    case 'hand-written': {
      const sdk = createSdk();
      const tracer = sdk.tracerProvider.getTracer('bench');
      const mediator = createMediator({ handlers: [handle(Ping, pingHandler)] });
      const op = () => {
        const command = Ping.create({ n: 1 });
        return tracer.startActiveSpan(
          'cqrs.command bench.ping',
          {
            kind: SpanKind.INTERNAL,
            attributes: {
              'cqrs.message.type': command.type,
              'cqrs.message.kind': 'command',
              'cqrs.handler': 'pingHandler',
              'cqrs.request_id': command.metadata.requestId,
              'messaging.message.conversation_id': command.metadata.correlationId,
            },
          },
          (span) =>
            mediator.send(command).then(
              (result) => {
                span.end();
                return result;
              },
              (error: unknown) => {
                span.setStatus({ code: SpanStatusCode.ERROR });
                span.end();
                throw error;
              },
            ),
        );
      };
      return { op, close: () => sdk.close() };
    }
    default:
      throw new Error(`observe send: unknown variant ${variant}`);
  }
}
