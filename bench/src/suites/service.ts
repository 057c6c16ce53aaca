/**
 * `service` suite: the orders service of `examples/orders` on Postgres against a hand-written Fastify + pg route
 * doing the same insert and outbox row, over loopback; then the time from placing an order to the order being
 * in the projected list at 500 orders/s with every loop running. See `service/cases.ts`.
 */
import type { CaseSpec, Metrics, Suite } from '../lib/types.ts';

const module = new URL('./service/cases.ts', import.meta.url).href;

const cases: CaseSpec[] = [
  { name: 'service raw route', module, variant: 'raw', baseline: 'service raw route' },
  { name: 'service place order', module, variant: 'service', baseline: 'service raw route' },
  {
    name: 'service place-order-to-projected p99',
    module,
    variant: 'projected:500',
    baseline: 'service raw route',
  },
  {
    name: 'service place-order-to-projected p99 at 100/s',
    module,
    variant: 'projected:100',
    baseline: 'service raw route',
  },
];

export const service: Suite = {
  name: 'service',
  description:
    'the orders service on Postgres: hand-written Fastify + pg route vs the service api process (autocannon, 16 connections, 5 s), and placed-to-projected p99 at 500 orders/s (Postgres + NATS, every loop in one process)',
  columns: [
    { field: 'per_s', label: 'orders/s', digits: 0 },
    { field: 'p99_ms', label: 'HTTP p99 ms', digits: 1 },
    { field: 'ms', label: 'placed-to-projected p99 ms', digits: 1 },
    { field: 'x_paired', label: 'x raw paired', digits: 2 },
  ],
  baseline: { case: 'service raw route', field: 'per_s', label: 'vs raw route' },
  notes: [
    'place order writes the order row, the outbox row (with its per-key advisory lock) and the Idempotency-Key record in one unit of work; the raw route writes the same order row and the same outbox row into the same tables (cqrs_outbox with the indexes a relay reads it by), no lock, no key record. Both get the same requests, with a new Idempotency-Key each.',
    'x raw paired: the median over 5 pairs of 2 s runs of the service over the raw route, the two servers up together and loaded alternately (separate processes moved by 30% between runs).',
    'place-order-to-projected: 500 orders/s offered (the target), and 100/s, after 2 s at that rate that are not measured; orders/s is the rate the sender reached; past what the service sustains the p99 is queueing time.',
    'targets (issue 18): place order >= 0.8x the raw route; placed-to-projected p99 <= 150 ms at 500 orders/s.',
  ],
  nodeFlags: [],
  timeoutMs: 240_000,
  cases,
  run: async (spec: CaseSpec): Promise<Metrics> => {
    const { run } = (await import(spec.module)) as { run(variant: string): Promise<Metrics> };
    return run(spec.variant);
  },
};
