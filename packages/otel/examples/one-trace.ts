// biome-ignore-all lint/suspicious/noConsole: an example prints what it does
/**
 * The README example: a command whose handler emits an event, the outbox relay publishing it, a consumer handling
 * it; every span lands in one trace. Run it with
 * `npx node --conditions=@cqrs-ts/source packages/otel/examples/one-trace.ts`.
 */
// #region readme
import {
  createInMemoryBroker,
  createInMemoryConsumer,
  createInMemoryUnitOfWork,
  createMediator,
  createOutboxRelay,
  defineCommand,
  defineEvent,
  handle,
} from '@cqrs-ts/core';
import { instrumentCqrs } from '@cqrs-ts/otel';
import { context, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  SimpleSpanProcessor,
} from '@opentelemetry/sdk-trace-base';

const PlaceOrder = defineCommand('shop.place-order').withPayload<{ orderId: string }>().returns<string>();
const OrderPlaced = defineEvent('shop.order-placed', { topic: 'orders' }).withPayload<{ orderId: string }>();

export async function main() {
  // Your SDK setup (NodeSDK does the same): an AsyncLocalStorage context manager and a tracer provider.
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  const exporter = new InMemorySpanExporter();
  const tracerProvider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
  using _otel = instrumentCqrs({ tracerProvider, messagingSystem: 'memory' });

  const uow = createInMemoryUnitOfWork();
  const mediator = createMediator({
    behaviors: [uow],
    handlers: [
      handle(PlaceOrder, (c, ctx) => {
        ctx.emit(OrderPlaced, { orderId: c.payload.orderId });
        return c.payload.orderId;
      }),
    ],
  });
  const broker = createInMemoryBroker();
  const relay = createOutboxRelay({ store: uow.outbox, publisher: broker });
  let handled!: () => void;
  const done = new Promise<void>((resolve) => (handled = resolve));
  let handlerTraceId: string | undefined;
  await using consumer = createInMemoryConsumer({
    broker,
    topics: ['orders'],
    name: 'shipping',
    handle: () => {
      handlerTraceId = trace.getActiveSpan()?.spanContext().traceId; // the handler runs inside `process orders`
      handled();
    },
  });
  await consumer.start();

  // As if an HTTP request with this traceparent sent the command (HTTP packages take it from the header).
  const traceparent = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
  await mediator.send(PlaceOrder.create({ orderId: 'o-1' }, { traceparent }));
  await relay.runOnce();
  await done;

  const spans = exporter.getFinishedSpans();
  for (const s of spans) console.log(`${s.spanContext().traceId} ${s.name}`);
  return {
    spans: spans.map((s) => s.name),
    traceIds: [...new Set([...spans.map((s) => s.spanContext().traceId), handlerTraceId])],
  };
}
// #endregion readme

if (import.meta.main) await main();
