/**
 * `broker` suite: per broker, the raw client publishing the same payloads with the same acknowledgement
 * guarantee (pipelined) against the cqrs-ts publisher/relay (`per_s`), and publish-to-handle latency at a
 * steady rate through the cqrs-ts consumer (`ms`). Each broker's cases live in `broker/<broker>.ts`, which
 * exports `cases(moduleUrl)` names and a `run(variant)`; an unreachable broker reports nothing.
 */
import type { CaseSpec, Metrics, Suite } from '../lib/types.ts';

/** What each `broker/<name>.ts` module exports as `cases`. */
export interface BrokerCases {
  /** Why the broker cannot be measured here (unreachable, not configured), or `undefined`. */
  skipReason(): Promise<string | undefined>;
  /** The raw client publishing the payloads with the same guarantee, pipelined: `{ per_s }`. */
  raw(): Promise<Metrics>;
  /** The cqrs-ts publisher or outbox relay doing the same: `{ per_s }`. */
  relay(): Promise<Metrics>;
  /** Publish-to-handle latency quantile `q` (0..1) at a steady rate: `{ ms }`. */
  latency(q: number): Promise<Metrics>;
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
  const { cases: broker } = (await import(spec.module)) as { cases: BrokerCases };
  const reason = await broker.skipReason();
  if (reason !== undefined) {
    console.log(`note: ${spec.name}: skipped, ${reason}`);
    return {};
  }
  switch (spec.variant) {
    case 'raw':
      return broker.raw();
    case 'relay':
      return broker.relay();
    case 'latency-p50':
      return broker.latency(0.5);
    case 'latency-p99':
      return broker.latency(0.99);
    default:
      throw new Error(`broker bench: unknown variant ${spec.variant}`);
  }
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
