/**
 * The OpenTelemetry SDK as the `observe` cases run it: an AsyncLocalStorage context manager, a batch span
 * processor and an exporter that does an OTLP exporter's work short of the network.
 */
import { context } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { type ExportResult, ExportResultCode } from '@opentelemetry/core';
import { ProtobufTraceSerializer } from '@opentelemetry/otlp-transformer';
import { MeterProvider, MetricReader } from '@opentelemetry/sdk-metrics';
import {
  BasicTracerProvider,
  BatchSpanProcessor,
  type ReadableSpan,
  type SpanExporter,
} from '@opentelemetry/sdk-trace-base';

/**
 * Encodes each batch as the OTLP/HTTP protobuf exporter does (the SDK's own serializer), then drops it, as an
 * exporter does once the collector has it. Not the SDK's `InMemorySpanExporter`: it keeps every span, and up to
 * 10,000 retained spans (tens of MB) survive the young generation and turn the run into a measure of the old
 * generation's GC, which a real exporter does not cause.
 */
class EncodingExporter implements SpanExporter {
  spans = 0;
  bytes = 0;
  export(spans: ReadableSpan[], done: (result: ExportResult) => void): void {
    const body = ProtobufTraceSerializer.serializeRequest(spans);
    this.spans += spans.length;
    this.bytes += body?.length ?? 0;
    done({ code: ExportResultCode.SUCCESS });
  }
  async shutdown(): Promise<void> {}
  async forceFlush(): Promise<void> {}
}

/** A metric reader that is never collected from: instruments record, nothing is exported. */
class IdleReader extends MetricReader {
  protected async onForceFlush(): Promise<void> {}
  protected async onShutdown(): Promise<void> {}
}

export function createSdk() {
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  const exporter = new EncodingExporter();
  const tracerProvider = new BasicTracerProvider({
    spanProcessors: [new BatchSpanProcessor(exporter)],
  });
  const meterProvider = new MeterProvider({ readers: [new IdleReader()] });
  return {
    tracerProvider,
    meterProvider,
    /** Spans the exporter encoded so far (after a flush, every span ended; the batch processor drops none). */
    async exported(): Promise<number> {
      await tracerProvider.forceFlush();
      return exporter.spans;
    },
    async close() {
      await tracerProvider.shutdown();
      await meterProvider.shutdown();
    },
  };
}
