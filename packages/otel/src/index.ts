/**
 * `@cqrs-ts/otel`: OpenTelemetry spans and metrics from core's `diagnostics_channel` events.
 * @module
 */
export type {
  CqrsInstrumentation,
  CqrsInstrumentationOptions,
  OutboxHealthSource,
  ProjectionLagSource,
} from './instrument-cqrs.ts';
export { instrumentCqrs } from './instrument-cqrs.ts';
export { SEMCONV_VERSION } from './semconv.ts';
