/**
 * `@cqrs-ts/prometheus`: Prometheus metrics of cqrs-ts on `prom-client`, from core's diagnostics channels and the
 * health of relays, projections and saga runners.
 * @module
 */
export type {
  PrometheusMetrics,
  PrometheusMetricsOptions,
  SagaCountSource,
  SagaHealthSource,
} from './prometheus-metrics.ts';
export { createPrometheusMetrics } from './prometheus-metrics.ts';
