/**
 * `observe` send cases: `mediator.send(Ping.create({ n: 1 }))` to the dispatch suite's trivial handler.
 *
 * - `diagnostics-off`: a copy of core whose `hasSubscribers` guards are compiled out (see `core-copy-hooks.mjs`).
 * - `no-subscriber`: an unchanged copy of core, loaded the same way, with nobody listening to its channels.
 * - `otel`: `instrumentCqrs()` with the SDK (AsyncLocalStorage context manager, batch span processor, in-memory
 *   exporter); metrics go to the global no-op meter provider.
 * - `hand-written`: no instrumentation; `tracer.startActiveSpan` with the same name and attributes around the same
 *   `send`, ended when it settles (same SDK).
 */
import { register } from 'node:module';
import { createMediator, handle } from '@cqrs-ts/core';
import { instrumentCqrs } from '@cqrs-ts/otel';
import { SpanKind, SpanStatusCode } from '@opentelemetry/api';
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
