/** The OpenTelemetry SDK as the `observe` cases run it: an AsyncLocalStorage context manager, a batch span processor. */
import { context } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import type { ExportResult } from '@opentelemetry/core';
import { MeterProvider, MetricReader } from '@opentelemetry/sdk-metrics';
import {
  BasicTracerProvider,
  BatchSpanProcessor,
  InMemorySpanExporter,
  type ReadableSpan,
} from '@opentelemetry/sdk-trace-base';

/** The SDK's in-memory exporter, emptied past 10,000 spans so a long run does not grow the heap without bound. */
class BoundedInMemoryExporter extends InMemorySpanExporter {
  override export(spans: ReadableSpan[], done: (result: ExportResult) => void): void {
    super.export(spans, done);
    if (this.getFinishedSpans().length > 10_000) this.reset();
  }
}

/** A metric reader that is never collected from: instruments record, nothing is exported. */
class IdleReader extends MetricReader {
  protected async onForceFlush(): Promise<void> {}
  protected async onShutdown(): Promise<void> {}
}

export function createSdk() {
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  const tracerProvider = new BasicTracerProvider({
    spanProcessors: [new BatchSpanProcessor(new BoundedInMemoryExporter())],
  });
  const meterProvider = new MeterProvider({ readers: [new IdleReader()] });
  return {
    tracerProvider,
    meterProvider,
    async close() {
      await tracerProvider.shutdown();
      await meterProvider.shutdown();
    },
  };
}
