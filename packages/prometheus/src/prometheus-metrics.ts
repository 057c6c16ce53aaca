import { channel, tracingChannel } from 'node:diagnostics_channel';
import { performance } from 'node:perf_hooks';
import type {
  ConsumeDispositionContext,
  ConsumeTraceContext,
  DispatchTraceContext,
  Health,
  HealthStatus,
  OutboxAppendTraceContext,
  OutboxRelay,
  ProjectionBatchTraceContext,
  ProjectionRunner,
  RelayPublishTraceContext,
  SagaStepTraceContext,
} from '@cqrs-ts/core';
import { ConfigurationError, DIAGNOSTICS_CHANNELS, TRACING_CHANNELS } from '@cqrs-ts/core';
import { Counter, Gauge, type Registry } from 'prom-client';
import { SeriesHistogram } from './prometheus-histogram.ts';

/** What {@link createPrometheusMetrics} reads of a saga runner (`SagaRunner` of `@cqrs-ts/saga` fits). */
export interface SagaHealthSource {
  health(): Promise<{ readonly needsOperator: number; readonly retrying: number; readonly active: number }>;
}

/** What {@link createPrometheusMetrics} reads of a saga store: its optional `count` by status (`SagaStore` fits). */
export interface SagaCountSource {
  count?(): Promise<Readonly<Record<string, number>>>;
}

/** Options of {@link createPrometheusMetrics}. */
export interface PrometheusMetricsOptions {
  /** Where the metrics are registered; never the global registry unless you pass it. */
  readonly registry: Registry;
  /** Outbox relays by a name of yours (the `relay` label): backlog, oldest pending age, dead rows. */
  readonly relays?: Readonly<Record<string, OutboxRelay>>;
  /** Projection runners and the projections to report: lag in events and seconds. */
  readonly projections?: readonly { readonly runner: ProjectionRunner; readonly names: readonly string[] }[];
  /** Saga runners by a name of yours (the `runner` label): sagas needing an operator, retrying, active. */
  readonly sagas?: Readonly<Record<string, SagaHealthSource>>;
  /** Saga stores by a name of yours (the `store` label): sagas per status, from the store's `count()`. */
  readonly sagaStores?: Readonly<Record<string, SagaCountSource>>;
  /** A health model: `cqrs_health_status` per readiness component (1 pass, 0.5 warn, 0 fail). */
  readonly health?: Health;
  /** Buckets of the duration histograms, in seconds. @default 1 ms to 10 s */
  readonly buckets?: readonly number[];
  /**
   * Most distinct message types a metric labels; later ones are counted as `other` (a type read off the wire
   * is not trusted to be bounded). @default 500
   */
  readonly maxMessageTypes?: number;
  /** A scrape waits this long for each health read (relay, projection, saga); a read that does not answer is left out. @default 1000 */
  readonly collectTimeoutMs?: number;
}

/** The subscription; `close()` unsubscribes from the channels and removes the metrics from the registry. */
export interface PrometheusMetrics extends Disposable {
  readonly registry: Registry;
  close(): void;
}

const DEFAULT_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
const HEALTH_VALUE: Readonly<Record<HealthStatus, number>> = { pass: 1, warn: 0.5, fail: 0 };

/** Calls that come while a read is in flight share it (the gauges of one scrape); the next scrape reads again. */
function shared<T>(read: () => Promise<T>): () => Promise<T> {
  let inFlight: Promise<T> | undefined;
  return () => {
    if (inFlight === undefined) {
      const p = read();
      inFlight = p;
      const clear = () => {
        if (inFlight === p) inFlight = undefined;
      };
      p.then(clear, clear);
    }
    return inFlight;
  };
}

/** Resolves `read()`, or `undefined` when it fails or takes longer than `ms`. */
async function within<T>(ms: number, read: () => Promise<T>): Promise<T | undefined> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<undefined>((resolve) => {
    timer = setTimeout(() => resolve(undefined), ms);
  });
  try {
    return await Promise.race([read().catch(() => undefined), late]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Prometheus metrics of cqrs-ts on `prom-client`: subscribes to core's diagnostics channels (dispatch, consume,
 * relay publish, outbox append, saga step, projection batch, consume disposition) and reads the health of the
 * relays, projections and saga runners you pass at each scrape. Labels are low-cardinality only: message type
 * and kind, consumer, destination-free outcomes, relay, projection and saga names; never ids.
 *
 * | metric | type | labels |
 * | --- | --- | --- |
 * | `cqrs_dispatch_duration_seconds` | histogram | `message_type`, `kind`, `outcome` |
 * | `cqrs_messages_published_total` | counter | `message_type`, `outcome` |
 * | `cqrs_messages_consumed_total` | counter | `consumer`, `message_type`, `disposition` |
 * | `cqrs_consume_duration_seconds` | histogram | `consumer`, `message_type`, `outcome` |
 * | `cqrs_dead_letters_total`, `cqrs_inbox_duplicates_total` | counter | `consumer`, `message_type` |
 * | `cqrs_outbox_appended_total` | counter | `message_type` |
 * | `cqrs_outbox_backlog`, `cqrs_outbox_oldest_pending_age_seconds`, `cqrs_outbox_dead` | gauge | `relay` |
 * | `cqrs_projection_lag_events`, `cqrs_projection_lag_seconds` | gauge | `projection` |
 * | `cqrs_projection_batches_total` | counter | `projection`, `outcome` |
 * | `cqrs_saga_steps_total` | counter | `saga`, `step`, `action`, `outcome` |
 * | `cqrs_sagas` | gauge | `runner`, `state` (`needs_operator`, `retrying`, `active`) |
 * | `cqrs_saga_states` | gauge | `store`, `status` |
 * | `cqrs_health_status` | gauge | `component` |
 *
 * @throws ConfigurationError for a missing registry, a saga store without `count()`, or malformed options
 */
export function createPrometheusMetrics(options: PrometheusMetricsOptions): PrometheusMetrics {
  const registry = options?.registry;
  if (typeof registry?.registerMetric !== 'function')
    throw new ConfigurationError('createPrometheusMetrics: pass a prom-client Registry as registry');
  const maxTypes = options.maxMessageTypes ?? 500;
  const timeoutMs = options.collectTimeoutMs ?? 1000;
  if (!Number.isInteger(maxTypes) || maxTypes < 1 || !(timeoutMs > 0))
    throw new ConfigurationError(
      'createPrometheusMetrics: maxMessageTypes must be >= 1 and collectTimeoutMs > 0',
    );
  const buckets = [...(options.buckets ?? DEFAULT_BUCKETS)];
  const registers = [registry];

  const types = new Set<string>();
  const typeLabel = (type: string | undefined): string => {
    if (type === undefined || type === '') return 'unknown';
    if (types.has(type)) return type;
    if (types.size >= maxTypes) return 'other';
    types.add(type);
    return type;
  };

  const dispatchDuration = new SeriesHistogram({
    name: 'cqrs_dispatch_duration_seconds',
    help: 'Commands and queries sent through a mediator: duration by message type, kind and outcome.',
    buckets,
    registry,
  });
  const published = new Counter({
    name: 'cqrs_messages_published_total',
    help: 'Messages the outbox relay handed to the broker, by message type and outcome (ok, failed).',
    labelNames: ['message_type', 'outcome'],
    registers,
  });
  const consumed = new Counter({
    name: 'cqrs_messages_consumed_total',
    help: 'Deliveries consumers settled, by disposition (handled, duplicate, retry, dead-letter, release).',
    labelNames: ['consumer', 'message_type', 'disposition'],
    registers,
  });
  const consumeDuration = new SeriesHistogram({
    name: 'cqrs_consume_duration_seconds',
    help: 'Event handling of one delivery attempt by a consumer, by outcome.',
    buckets,
    registry,
  });
  const deadLetters = new Counter({
    name: 'cqrs_dead_letters_total',
    help: 'Deliveries consumers moved to their dead-letter destination.',
    labelNames: ['consumer', 'message_type'],
    registers,
  });
  const duplicates = new Counter({
    name: 'cqrs_inbox_duplicates_total',
    help: 'Redeliveries acknowledged without running the handler again (the inbox had them).',
    labelNames: ['consumer', 'message_type'],
    registers,
  });
  const appended = new Counter({
    name: 'cqrs_outbox_appended_total',
    help: 'Events units of work staged in their outbox, by message type.',
    labelNames: ['message_type'],
    registers,
  });
  const projectionBatches = new Counter({
    name: 'cqrs_projection_batches_total',
    help: 'Batches async projections applied (ok) or failed to apply (error).',
    labelNames: ['projection', 'outcome'],
    registers,
  });
  const sagaSteps = new Counter({
    name: 'cqrs_saga_steps_total',
    help: 'Saga step runs (act or compensate, retries included), by outcome.',
    labelNames: ['saga', 'step', 'action', 'outcome'],
    registers,
  });

  const relays = Object.entries(options.relays ?? {});
  const relayStats = () =>
    Promise.all(
      relays.map(async ([name, relay]) => ({ name, h: await within(timeoutMs, () => relay.health()) })),
    );
  /** One read of every relay per scrape, shared by the three outbox gauges (a scrape collects them at once). */
  const relaySnapshot = shared(relayStats);
  const relayGauge = (
    name: string,
    help: string,
    pick: (h: Awaited<ReturnType<OutboxRelay['health']>>) => number,
  ) =>
    new Gauge({
      name,
      help,
      labelNames: ['relay'],
      registers,
      async collect() {
        this.reset();
        for (const { name: relay, h } of await relaySnapshot())
          if (h !== undefined) this.set({ relay }, pick(h));
      },
    });
  relayGauge('cqrs_outbox_backlog', 'Outbox events not published yet.', (h) => h.backlog);
  relayGauge(
    'cqrs_outbox_oldest_pending_age_seconds',
    'Age of the oldest outbox event not published yet.',
    (h) => h.oldestPendingAgeMs / 1000,
  );
  relayGauge(
    'cqrs_outbox_dead',
    'Outbox events that went to dead (out of attempts or unreadable).',
    (h) => h.dead,
  );

  const projections = (options.projections ?? []).flatMap(({ runner, names }) =>
    names.map((name) => {
      runner.heartbeat(name); // throws ConfigurationError for a name the runner does not run
      return { runner, name };
    }),
  );
  const projectionStats = () =>
    Promise.all(
      projections.map(async ({ runner, name }) => ({
        name,
        s: await within(timeoutMs, () => runner.status(name)),
      })),
    );
  const projectionSnapshot = shared(projectionStats);
  new Gauge({
    name: 'cqrs_projection_lag_events',
    help: 'Events of its types readable after a projection checkpoint (counted up to 10,000).',
    labelNames: ['projection'],
    registers,
    async collect() {
      this.reset();
      for (const { name, s } of await projectionSnapshot())
        if (s !== undefined) this.set({ projection: name }, s.lagEvents);
    },
  });
  new Gauge({
    name: 'cqrs_projection_lag_seconds',
    help: 'Age of the oldest event a projection has not applied yet; 0 when caught up.',
    labelNames: ['projection'],
    registers,
    async collect() {
      this.reset();
      for (const { name, s } of await projectionSnapshot())
        if (s !== undefined) this.set({ projection: name }, s.lagMs / 1000);
    },
  });

  const sagas = Object.entries(options.sagas ?? {});
  if (sagas.length > 0)
    new Gauge({
      name: 'cqrs_sagas',
      help: 'Sagas by state: needs_operator (compensation failed, not retried), retrying, active (running now).',
      labelNames: ['runner', 'state'],
      registers,
      async collect() {
        this.reset();
        const reads = await Promise.all(
          sagas.map(async ([runner, s]) => ({ runner, h: await within(timeoutMs, () => s.health()) })),
        );
        for (const { runner, h } of reads) {
          if (h === undefined) continue;
          this.set({ runner, state: 'needs_operator' }, h.needsOperator);
          this.set({ runner, state: 'retrying' }, h.retrying);
          this.set({ runner, state: 'active' }, h.active);
        }
      },
    });

  const sagaStores = Object.entries(options.sagaStores ?? {});
  for (const [name, store] of sagaStores)
    if (typeof store?.count !== 'function')
      throw new ConfigurationError(`createPrometheusMetrics: saga store ${name} has no count()`);
  if (sagaStores.length > 0)
    new Gauge({
      name: 'cqrs_saga_states',
      help: 'Stored sagas per status (running, paused, completed, compensating, compensated, compensation_failed, ...).',
      labelNames: ['store', 'status'],
      registers,
      async collect() {
        this.reset();
        const reads = await Promise.all(
          sagaStores.map(async ([store, s]) => ({
            store,
            counts: await within(timeoutMs, () => s.count!()),
          })),
        );
        for (const { store, counts } of reads)
          for (const [status, n] of Object.entries(counts ?? {})) this.set({ store, status }, n);
      },
    });

  const health = options.health;
  if (health !== undefined)
    new Gauge({
      name: 'cqrs_health_status',
      help: 'Readiness per health component: 1 pass, 0.5 warn, 0 fail.',
      labelNames: ['component'],
      registers,
      async collect() {
        this.reset();
        const report = await within(timeoutMs * 2, () => health.ready());
        if (report === undefined) return;
        for (const [component, entries] of Object.entries(report.checks))
          this.set({ component }, HEALTH_VALUE[entries[0]?.status ?? 'fail']);
      },
    });

  // Channels. A start time per traced call, kept beside the context (which subscribers must not change).
  const started = new WeakMap<object, number>();
  const onStart = (ctx: object) => {
    started.set(ctx, performance.now());
  };
  const elapsed = (ctx: object): number | undefined => {
    const t = started.get(ctx);
    return t === undefined ? undefined : (performance.now() - t) / 1000;
  };

  const dispatch = tracingChannel<unknown, DispatchTraceContext>(TRACING_CHANNELS.dispatch);
  const dispatchHandlers = {
    start: onStart,
    asyncEnd(ctx: DispatchTraceContext) {
      const s = elapsed(ctx);
      if (s === undefined) return;
      const outcome = ctx.error === undefined ? 'ok' : 'error';
      const type = typeLabel(ctx.messageType);
      dispatchDuration.observe(
        `${type}\u0000${ctx.kind}\u0000${outcome}`,
        () => ({
          message_type: type,
          kind: ctx.kind,
          outcome,
        }),
        s,
      );
    },
  };
  const consume = tracingChannel<unknown, ConsumeTraceContext>(TRACING_CHANNELS.consume);
  const consumeHandlers = {
    start: onStart,
    asyncEnd(ctx: ConsumeTraceContext) {
      const s = elapsed(ctx);
      if (s === undefined) return;
      const outcome = ctx.error === undefined ? 'ok' : 'error';
      const type = typeLabel(ctx.messageType);
      consumeDuration.observe(
        `${ctx.consumer}\u0000${type}\u0000${outcome}`,
        () => ({
          consumer: ctx.consumer,
          message_type: type,
          outcome,
        }),
        s,
      );
    },
  };
  const relayPublish = tracingChannel<unknown, RelayPublishTraceContext>(TRACING_CHANNELS.relayPublish);
  const relayHandlers = {
    asyncEnd(ctx: RelayPublishTraceContext) {
      const results = Array.isArray(ctx.result) ? (ctx.result as readonly { readonly ok?: boolean }[]) : [];
      for (let i = 0; i < ctx.messages.length; i++) {
        const ok = ctx.error === undefined && results[i]?.ok === true;
        published.inc({ message_type: typeLabel(ctx.messages[i]!.type), outcome: ok ? 'ok' : 'failed' });
      }
    },
  };
  const outboxAppend = tracingChannel<unknown, OutboxAppendTraceContext>(TRACING_CHANNELS.outboxAppend);
  const appendHandlers = {
    asyncEnd(ctx: OutboxAppendTraceContext) {
      if (ctx.error !== undefined) return;
      for (const e of ctx.events) appended.inc({ message_type: typeLabel(e.type) });
    },
  };
  const sagaStep = tracingChannel<unknown, SagaStepTraceContext>(TRACING_CHANNELS.sagaStep);
  const sagaHandlers = {
    asyncEnd(ctx: SagaStepTraceContext) {
      sagaSteps.inc({
        saga: ctx.saga,
        step: ctx.step,
        action: ctx.action,
        outcome: ctx.error === undefined ? 'ok' : 'error',
      });
    },
  };
  const projectionBatch = tracingChannel<unknown, ProjectionBatchTraceContext>(
    TRACING_CHANNELS.projectionBatch,
  );
  const batchHandlers = {
    asyncEnd(ctx: ProjectionBatchTraceContext) {
      projectionBatches.inc({
        projection: ctx.projection,
        outcome: ctx.error === undefined ? 'ok' : 'error',
      });
    },
  };
  const disposition = channel(DIAGNOSTICS_CHANNELS.consumeDisposition);
  const onDisposition = (message: unknown) => {
    const d = message as ConsumeDispositionContext;
    const labels = { consumer: d.consumer, message_type: typeLabel(d.messageType) };
    const kind = d.action === 'ack' ? (d.outcome === 'duplicate' ? 'duplicate' : 'handled') : d.action;
    consumed.inc({ ...labels, disposition: kind });
    if (kind === 'duplicate') duplicates.inc(labels);
    else if (kind === 'dead-letter') deadLetters.inc(labels);
  };

  const subscriptions: [{ subscribe(h: object): void; unsubscribe(h: object): unknown }, object][] = [
    [dispatch, dispatchHandlers],
    [consume, consumeHandlers],
    [relayPublish, relayHandlers],
    [outboxAppend, appendHandlers],
    [sagaStep, sagaHandlers],
    [projectionBatch, batchHandlers],
  ];
  for (const [ch, handlers] of subscriptions) ch.subscribe(handlers);
  disposition.subscribe(onDisposition);

  let closed = false;
  const metrics: PrometheusMetrics = {
    registry,
    close() {
      if (closed) return;
      closed = true;
      for (const [ch, handlers] of subscriptions) ch.unsubscribe(handlers);
      disposition.unsubscribe(onDisposition);
      for (const name of [
        'cqrs_dispatch_duration_seconds',
        'cqrs_messages_published_total',
        'cqrs_messages_consumed_total',
        'cqrs_consume_duration_seconds',
        'cqrs_dead_letters_total',
        'cqrs_inbox_duplicates_total',
        'cqrs_outbox_appended_total',
        'cqrs_projection_batches_total',
        'cqrs_saga_steps_total',
        'cqrs_outbox_backlog',
        'cqrs_outbox_oldest_pending_age_seconds',
        'cqrs_outbox_dead',
        'cqrs_projection_lag_events',
        'cqrs_projection_lag_seconds',
        'cqrs_sagas',
        'cqrs_saga_states',
        'cqrs_health_status',
      ])
        registry.removeSingleMetric(name);
    },
    [Symbol.dispose]: () => metrics.close(),
  };
  return metrics;
}
