/**
 * `broker` suite: per broker, the raw client publishing the same payloads with the same acknowledgement
 * guarantee (pipelined) against the cqrs-ts publisher/relay (`per_s`), and publish-to-handle latency at a
 * steady rate through the cqrs-ts consumer (`ms`). Each broker's cases live in `broker/<broker>.ts`, which
 * exports `cases(moduleUrl)` names and a `run(variant)`; an unreachable broker reports nothing.
 */
import type { CaseSpec, Metrics, Suite } from '../lib/types.ts';

/** What each `broker/<name>.ts` module implements. */
export interface BrokerBenchModule {
  /** Variants: `raw`, `relay`, `latency-p50`, `latency-p99`. Returns `{}` when the broker is unreachable. */
  run(variant: string): Promise<Metrics>;
}

const BROKERS = ['nats', 'rabbitmq', 'redis', 'kafka'] as const;
const KINDS = [
  ['raw', 'raw'],
  ['relay', 'relay'],
  ['publish-to-handle p50', 'latency-p50'],
  ['publish-to-handle p99', 'latency-p99'],
] as const;

const moduleUrl = (broker: string): string => new URL(`./broker/${broker}.ts`, import.meta.url).href;

const cases: CaseSpec[] = BROKERS.flatMap((broker) =>
  KINDS.map(([label, variant]) => ({ name: `${broker} ${label}`, module: moduleUrl(broker), variant })),
);

async function run(spec: CaseSpec): Promise<Metrics> {
  let mod: BrokerBenchModule;
  try {
    mod = (await import(spec.module)) as BrokerBenchModule;
  } catch (error) {
    if ((error as { code?: string }).code === 'ERR_MODULE_NOT_FOUND') return {};
    throw error;
  }
  return mod.run(spec.variant);
}

export const broker: Suite = {
  name: 'broker',
  description: 'brokers: raw client vs cqrs-ts publisher/relay throughput, publish-to-handle latency',
  columns: [
    { field: 'per_s', label: 'msgs/s', digits: 0 },
    { field: 'ms', label: 'ms', digits: 2 },
  ],
  notes: [
    'raw / relay: the same payloads with the same acknowledgement guarantee, pipelined; see each case module for the in-flight window.',
    'publish-to-handle: a steady rate through the cqrs-ts consumer, from publish to handler entry.',
    'kafka: runs only when KAFKA_BROKERS is set.',
  ],
  nodeFlags: [],
  timeoutMs: 180_000,
  cases,
  run,
};
