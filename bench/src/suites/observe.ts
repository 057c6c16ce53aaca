/**
 * `observe` suite: the cost of core's tracing events and of `@cqrs-ts/otel`.
 *
 * - `cqrs-ts send no subscriber` against `cqrs-ts send diagnostics off`: core with its `diagnostics_channel`
 *   guards (nobody listening) against a copy of core with them compiled out (see `observe/core-copy-hooks.mjs`).
 * - `cqrs-ts send otel` against `hand-written span`: `instrumentCqrs()` against a `tracer.startActiveSpan` around
 *   the same send (the SDK with a batch span processor and an exporter that encodes OTLP/protobuf in both).
 * - `cqrs-ts send prometheus` (`@cqrs-ts/prometheus` subscribed) against `hand-written histogram` (a prom-client
 *   histogram with the same labels timed around the same send); `cqrs-ts send prometheus off` is the send alone.
 * - `nats relay traced` / `nats consume traced` against the same without instrumentation (tracing and metrics on);
 *   `ns/op` is nanoseconds per message there (1e9 / msgs/s), so the ratio is untraced throughput / traced.
 */
import { DEFAULT_OP_OPTIONS, OP_NODE_FLAGS, opColumns, runAsyncOpCase } from '../lib/measure.ts';
import type { CaseSpec, Metrics, Suite } from '../lib/types.ts';
import { checkPing } from './dispatch/ping.ts';
import type { Tracing } from './observe/nats.ts';

const send = new URL('./observe/send.ts', import.meta.url).href;
const nats = new URL('./observe/nats.ts', import.meta.url).href;

const cases: CaseSpec[] = [
  { name: 'cqrs-ts send diagnostics off', module: send, variant: 'diagnostics-off' },
  { name: 'cqrs-ts send no subscriber', module: send, variant: 'no-subscriber' },
  { name: 'hand-written span', module: send, variant: 'hand-written' },
  { name: 'cqrs-ts send otel', module: send, variant: 'otel', baseline: 'hand-written span' },
  { name: 'cqrs-ts send prometheus off', module: send, variant: 'prometheus-off' },
  { name: 'cqrs-ts send empty subscriber', module: send, variant: 'empty-subscriber' },
  { name: 'hand-written histogram', module: send, variant: 'hand-written-histogram' },
  {
    name: 'cqrs-ts send prometheus',
    module: send,
    variant: 'prometheus',
    baseline: 'hand-written histogram',
  },
  { name: 'nats relay untraced', module: nats, variant: 'relay-untraced' },
  { name: 'nats relay traced', module: nats, variant: 'relay-traced', baseline: 'nats relay untraced' },
  { name: 'nats consume untraced', module: nats, variant: 'consume-untraced' },
  { name: 'nats consume traced', module: nats, variant: 'consume-traced', baseline: 'nats consume untraced' },
  {
    name: 'nats consume hand-traced',
    module: nats,
    variant: 'consume-hand-traced',
    baseline: 'nats consume untraced',
  },
];

interface NatsModule {
  skipReason(): Promise<string | undefined>;
  relay(tracing: Tracing): Promise<Metrics>;
  consume(tracing: Tracing): Promise<Metrics>;
}

async function run(spec: CaseSpec): Promise<Metrics> {
  if (spec.module === send) return runAsyncOpCase(spec, { ...DEFAULT_OP_OPTIONS, check: checkPing });
  const mod = (await import(spec.module)) as NatsModule;
  const reason = await mod.skipReason();
  if (reason !== undefined) {
    console.log(`note: ${spec.name}: skipped, ${reason}`);
    return {};
  }
  const dash = spec.variant.indexOf('-');
  const what = spec.variant.slice(0, dash) as 'relay' | 'consume';
  return mod[what](spec.variant.slice(dash + 1) as Tracing);
}

export const observe: Suite = {
  name: 'observe',
  description:
    'tracing cost: core diagnostics with nobody listening, @cqrs-ts/otel against a hand-written span, traced NATS relay and consumer',
  columns: [...opColumns(), { field: 'per_s', label: 'msgs/s', digits: 0 }],
  baseline: { case: 'cqrs-ts send diagnostics off', field: 'ns_per_op', label: 'vs baseline' },
  notes: [
    'diagnostics off: a copy of core with every `hasSubscribers` guard replaced by `false` at load (the channel code compiled out).',
    'otel / hand-written span: same SDK (AsyncLocalStorage context manager, BatchSpanProcessor, an exporter that encodes each batch as OTLP/protobuf and drops it), no metrics.',
    'prometheus / hand-written histogram: the same histogram (labels message_type, kind, outcome; 13 buckets) in a registry of its own.',
    'nats relay / consume: ns/op is per message (1e9 / msgs/s); traced runs tracing and metrics (a MeterProvider with an idle reader).',
    'nats consume hand-traced: no instrumentCqrs; the handler makes the same CONSUMER span (under the event traceparent) and histogram record by hand, same SDK: what tracing a message costs whoever writes it.',
  ],
  nodeFlags: OP_NODE_FLAGS,
  timeoutMs: 180_000,
  cases,
  run,
};
