import type { AsyncLocalStorage } from 'node:async_hooks';
import {
  subscribe,
  type TracingChannelSubscribers,
  tracingChannel,
  unsubscribe,
} from 'node:diagnostics_channel';
import { performance } from 'node:perf_hooks';
import {
  ConfigurationError,
  type ConsumeDispositionContext,
  type ConsumeTraceContext,
  DIAGNOSTICS_CHANNELS,
  type DispatchTraceContext,
  type OutboxAppendTraceContext,
  type ProjectionBatchTraceContext,
  type RelayPublishTraceContext,
  type SagaStepTraceContext,
  TRACING_CHANNELS,
} from '@cqrs-ts/core';
import {
  type Attributes,
  type Context,
  type Counter,
  context,
  diag,
  type Histogram,
  type Link,
  type Meter,
  type MeterProvider,
  metrics,
  type ObservableResult,
  ROOT_CONTEXT,
  type Span,
  SpanKind,
  SpanStatusCode,
  type Tracer,
  type TracerProvider,
  trace,
} from '@opentelemetry/api';
import * as sc from './semconv.ts';
import { injectSpanContext, remoteSpanContext } from './trace-context.ts';

/** What the outbox gauges read: an `OutboxRelay` (its `health()`), or anything with the same three fields. */
export interface OutboxHealthSource {
  health(): Promise<{ readonly backlog: number; readonly oldestPendingAgeMs: number; readonly dead: number }>;
}

/** What the projection lag gauges read: a `ProjectionRunner` (its `status(name)`) and the projections to ask about. */
export interface ProjectionLagSource {
  readonly runner: {
    status(
      name: string,
    ): Promise<{ readonly name: string; readonly lagEvents: number; readonly lagMs: number }>;
  };
  readonly projections: readonly string[];
}

/** Options of {@link instrumentCqrs}. */
export interface CqrsInstrumentationOptions {
  /** Where spans go. @default the global tracer provider (`trace.getTracerProvider()`) */
  readonly tracerProvider?: TracerProvider;
  /** Where metrics go. @default the global meter provider (`metrics.getMeterProvider()`) */
  readonly meterProvider?: MeterProvider;
  /**
   * How a consumer span relates to the producer's span carried by the message: `continue` makes it a child (one
   * trace from the HTTP request to the event handler); `link` starts a new trace with a link to the producer.
   * @default 'continue'
   */
  readonly consumerTraceMode?: 'continue' | 'link';
  /** The `messaging.system` attribute of relay and consumer spans and metrics (e.g. `nats`, `rabbitmq`). @default 'cqrs-ts' */
  readonly messagingSystem?: string;
  /** Outbox relays to report backlog, oldest pending age and dead rows of, by a name of yours (the `cqrs.relay` attribute). */
  readonly relays?: Readonly<Record<string, OutboxHealthSource>>;
  /** Projection runners to report the lag of (events and seconds behind), per projection. */
  readonly projections?: readonly ProjectionLagSource[];
}

/** The subscriptions {@link instrumentCqrs} made; disposing it removes them (spans in flight still end). */
export interface CqrsInstrumentation extends Disposable {
  /** Unsubscribes from every channel and stops the observable gauges. Idempotent. */
  dispose(): void;
  /** `true` when spans become the active context of the handlers they wrap (see {@link instrumentCqrs}). */
  readonly activatesSpans: boolean;
}

interface Started {
  readonly span: Span;
  readonly start: number;
}

interface Handlers<TContext> {
  start?(ctx: TContext): void;
  end?(ctx: TContext): void;
  asyncStart?(ctx: TContext): void;
  asyncEnd?(ctx: TContext): void;
  error?(ctx: TContext): void;
}

const CONSUMER_PENDING_MAX = 10_000;
const TRACE_EVENTS = ['start', 'end', 'asyncStart', 'asyncEnd', 'error'] as const;

/**
 * Turns core's `diagnostics_channel` events into OpenTelemetry spans and metrics. Spans: `cqrs.<kind> <type>` per
 * dispatch, `cqrs.outbox append`, `send <destination>` per batch the outbox relay publishes (linked to each
 * message's creation context, which goes out unchanged), `process <destination>` (CONSUMER) per delivery attempt,
 * continuing the message's creation context (or linked to it, see `consumerTraceMode`), `cqrs.saga <action> <saga>/<step>`
 * and `cqrs.projection <name>`. Attributes follow the OpenTelemetry messaging conventions (`messaging.*`, copied
 * from semantic-conventions {@link SEMCONV_VERSION}) and `cqrs.*` where they have none.
 *
 * Dispatch, consume, saga-step, outbox-append and projection spans are the active context of the code they wrap
 * (a handler's own spans and commands are their children) when the global context manager is the
 * `AsyncLocalStorageContextManager` (as `NodeSDK` registers): the span is entered into its storage with
 * `bindStore` on the channel's `start`. Register the SDK before calling this. With another context manager spans
 * are still made and parented, but not active (`activatesSpans` is then `false`).
 *
 * Metrics carry low-cardinality attributes only (message type and kind, destination, consumer, saga, outcome).
 * Instrumentation never throws into application code: a failure is reported through `diag` and ignored.
 *
 * @throws ConfigurationError `CQRS_CONFIGURATION` for an unknown `consumerTraceMode`.
 * @example
 * ```ts
 * using _otel = instrumentCqrs({ tracerProvider, meterProvider, messagingSystem: 'nats' });
 * ```
 */
export function instrumentCqrs(options: CqrsInstrumentationOptions = {}): CqrsInstrumentation {
  const mode = options.consumerTraceMode ?? 'continue';
  if (mode !== 'continue' && mode !== 'link')
    throw new ConfigurationError(`instrumentCqrs: consumerTraceMode must be 'continue' or 'link'`);
  const system = options.messagingSystem ?? 'cqrs-ts';
  const tracer: Tracer = (options.tracerProvider ?? trace.getTracerProvider()).getTracer('@cqrs-ts/otel');
  const meter = (options.meterProvider ?? metrics.getMeterProvider()).getMeter('@cqrs-ts/otel');
  const storage = contextStorage();
  const started = new WeakMap<object, Started>();
  const undo: (() => void)[] = [];

  const dispatchDuration = meter.createHistogram('cqrs.dispatch.duration', {
    unit: 's',
    description: 'Duration of commands and queries sent through a mediator, by message type',
  });
  const dispatchFailures = meter.createCounter('cqrs.dispatch.failures', {
    description: 'Commands and queries whose handler failed, by message type and error type',
  });
  const appended = meter.createCounter('cqrs.outbox.appended', {
    description: 'Events staged in an outbox by a unit of work, by message type',
  });
  const sent: Counter = meter.createCounter(sc.METRIC_MESSAGING_CLIENT_SENT_MESSAGES, {
    description:
      'Messages the outbox relay handed to the broker (error.type set when the broker refused one)',
  });
  const relayDuration: Histogram = meter.createHistogram(sc.METRIC_MESSAGING_CLIENT_OPERATION_DURATION, {
    unit: 's',
    description: 'Duration of one outbox relay publish call (a batch)',
  });
  // Per-delivery counts are kept here and reported by observable counters: a map lookup per delivery instead of
  // the SDK hashing an attribute set on every add.
  const consumed = tally(meter, sc.METRIC_MESSAGING_CLIENT_CONSUMED_MESSAGES, {
    description: 'Deliveries consumers settled, by destination, consumer and disposition',
  });
  const deadLetters = tally(meter, 'cqrs.consumer.dead_letters', {
    description: 'Deliveries a consumer dead-lettered',
  });
  const duplicates = tally(meter, 'cqrs.consumer.duplicates', {
    description: 'Deliveries the inbox recognised as already handled',
  });
  undo.push(consumed.stop, deadLetters.stop, duplicates.stop);
  const processDuration = meter.createHistogram(sc.METRIC_MESSAGING_PROCESS_DURATION, {
    unit: 's',
    description: 'Duration of one delivery attempt dispatched to the event handlers',
  });
  const sagaSteps = meter.createCounter('cqrs.saga.steps', {
    description: 'Saga step runs (act or compensate, retries included), by saga, action and outcome',
  });
  const sagaStepDuration = meter.createHistogram('cqrs.saga.step.duration', { unit: 's' });
  const compensations = meter.createCounter('cqrs.saga.compensations', {
    description: 'Saga compensation runs, by saga and outcome',
  });
  const projectionDuration = meter.createHistogram('cqrs.projection.batch.duration', { unit: 's' });
  const projectionEvents = meter.createCounter('cqrs.projection.batch.events', {
    description: 'Events applied by async projections',
  });

  /** Subscribes the handlers and, when the context storage is known, makes `open`'s span the active context. */
  function traced<TContext extends object>(
    name: string,
    open: ((ctx: TContext, parent: Context) => Span) | undefined,
    handlers: Handlers<TContext>,
  ): void {
    const channel = tracingChannel<unknown, TContext>(name);
    // only the events handled are subscribed: each one subscribed costs a publish per traced call
    const all: Handlers<TContext> = {};
    for (const event of TRACE_EVENTS) {
      const handler = handlers[event];
      if (handler !== undefined) all[event] = guard(handler);
    }
    if (open !== undefined) {
      const begin = (ctx: TContext): Context => {
        const parent = context.active();
        try {
          const span = open(ctx, parent);
          started.set(ctx, { span, start: performance.now() });
          return trace.setSpan(parent, span);
        } catch (error) {
          diag.warn('@cqrs-ts/otel: could not start a span', error);
          return parent;
        }
      };
      if (storage !== undefined) {
        channel.start.bindStore(storage, begin);
        undo.push(() => channel.start.unbindStore(storage));
      } else {
        const inner = all.start;
        all.start = (ctx) => {
          begin(ctx);
          inner?.(ctx);
        };
      }
    }
    // Node skips the events a subscriber object leaves out (its types ask for all five)
    const subscriber = all as TracingChannelSubscribers<TContext>;
    channel.subscribe(subscriber);
    undo.push(() => channel.unsubscribe(subscriber));
  }

  /** Ends the span of `ctx` with its outcome; returns its duration in seconds (and whether it failed). */
  function finish(ctx: object & { error?: unknown }, attributes?: Attributes): number | undefined {
    const s = started.get(ctx);
    if (s === undefined) return undefined;
    started.delete(ctx);
    if (attributes !== undefined) s.span.setAttributes(attributes);
    if (ctx.error !== undefined) failed(s.span, ctx.error);
    s.span.end();
    return (performance.now() - s.start) / 1000;
  }

  traced<DispatchTraceContext>(
    TRACING_CHANNELS.dispatch,
    (ctx, active) => {
      const span = tracer.startSpan(
        `cqrs.${ctx.kind} ${ctx.messageType}`,
        {
          kind: SpanKind.INTERNAL,
          attributes: {
            'cqrs.message.type': ctx.messageType,
            'cqrs.message.kind': ctx.kind,
            'cqrs.handler': ctx.handler,
            'cqrs.request_id': ctx.requestId,
            'messaging.message.conversation_id': ctx.correlationId,
          },
        },
        parentOf(active, ctx.traceparent, ctx.tracestate),
      );
      // the events the handler emits carry this span's context: the relay's send spans become its children
      if (ctx.carrier !== undefined) injectSpanContext(span.spanContext(), ctx.carrier);
      return span;
    },
    {
      asyncEnd(ctx) {
        const seconds = finish(ctx);
        if (seconds === undefined) return;
        const attrs: Attributes = {
          'cqrs.message.type': ctx.messageType,
          'cqrs.message.kind': ctx.kind,
        };
        if (ctx.error !== undefined) {
          attrs['error.type'] = errorType(ctx.error);
          dispatchFailures.add(1, attrs);
        }
        dispatchDuration.record(seconds, attrs);
      },
    },
  );

  traced<OutboxAppendTraceContext>(
    TRACING_CHANNELS.outboxAppend,
    (ctx, active) =>
      tracer.startSpan(
        'cqrs.outbox append',
        {
          kind: SpanKind.INTERNAL,
          attributes: {
            'cqrs.message.type': ctx.messageType,
            'messaging.batch.message_count': ctx.events.length,
            'messaging.message.conversation_id': ctx.correlationId,
          },
        },
        active,
      ),
    {
      asyncEnd(ctx) {
        finish(ctx);
        if (ctx.error !== undefined) return;
        for (const e of ctx.events) appended.add(1, { 'cqrs.message.type': e.type });
      },
    },
  );

  // One `send` span per publish call (a batch), linked to each message's creation context (the trace context it
  // carries, e.g. the dispatch that emitted it), which goes out unchanged; a message without one carries the span's.
  const relaySpans = new WeakMap<object, { span: Span; start: number }>();
  traced<RelayPublishTraceContext>(TRACING_CHANNELS.relayPublish, undefined, {
    start(ctx) {
      const messages = ctx.messages;
      const count = messages.length;
      let destination = count > 0 ? messages[0]!.topic : undefined;
      const links: Link[] = [];
      const linked = new Set<string>();
      const bare: number[] = []; // messages with no creation context of their own
      for (let i = 0; i < count; i++) {
        const m = messages[i]!;
        if (destination !== undefined && m.topic !== destination) destination = undefined;
        const traceparent = m.headers.traceparent;
        if (traceparent !== undefined && linked.has(traceparent)) continue; // its trace is linked already
        const remote =
          traceparent === undefined ? undefined : remoteSpanContext(traceparent, m.headers.tracestate);
        if (remote === undefined) {
          bare.push(i); // none, or not a valid one
        } else {
          linked.add(traceparent!);
          links.push({ context: remote });
        }
      }
      const attributes: Attributes = {
        'messaging.system': system,
        'messaging.operation.name': 'send',
        'messaging.operation.type': 'send',
        'messaging.batch.message_count': count,
        'cqrs.relay.id': ctx.relayId,
      };
      if (destination !== undefined) attributes['messaging.destination.name'] = destination;
      if (count === 1) {
        const m = messages[0]!;
        attributes['messaging.message.id'] = m.id;
        attributes['cqrs.message.type'] = m.type;
        attributes['cqrs.delivery_attempt'] = m.attempts + 1;
        const correlation = m.headers.correlationid;
        if (correlation !== undefined) attributes['messaging.message.conversation_id'] = correlation;
      }
      // a batch from one trace (a batch of one, or the events of one dispatch) stays in it
      const parent =
        links.length === 1 && bare.length === 0
          ? trace.setSpanContext(ROOT_CONTEXT, links[0]!.context)
          : context.active();
      const span = tracer.startSpan(
        destination === undefined ? 'send' : `send ${destination}`,
        // PRODUCER when its context is the creation context of a message, else CLIENT (semconv)
        { kind: bare.length === 0 ? SpanKind.CLIENT : SpanKind.PRODUCER, attributes, links },
        parent,
      );
      if (bare.length > 0) {
        const own: Record<string, string> = {}; // formatted once for the batch
        injectSpanContext(span.spanContext(), own);
        for (const i of bare) {
          const carrier = ctx.carriers[i];
          if (carrier !== undefined) Object.assign(carrier, own);
        }
      }
      relaySpans.set(ctx, { span, start: performance.now() });
    },
    asyncEnd(ctx) {
      const r = relaySpans.get(ctx);
      if (r === undefined) return;
      relaySpans.delete(ctx);
      const results = Array.isArray(ctx.result) ? (ctx.result as { ok?: boolean; error?: unknown }[]) : [];
      // one add per destination and outcome of the batch, not one per message
      const counts = new Map<string, { attrs: Attributes; n: number }>();
      let firstError: unknown;
      let failures = 0;
      for (let i = 0; i < ctx.messages.length; i++) {
        const topic = ctx.messages[i]!.topic;
        const outcome = results[i];
        const error =
          ctx.error ?? (outcome !== undefined && outcome.ok === false ? outcome.error : undefined);
        const notSent = error !== undefined || (outcome === undefined && results.length > 0);
        const type = notSent ? errorType(error) : '';
        if (notSent) {
          failures++;
          firstError ??= error ?? new Error('not published');
        }
        const key = `${topic}\n${type}`;
        const c = counts.get(key);
        if (c !== undefined) {
          c.n++;
          continue;
        }
        const attrs: Attributes = {
          'messaging.system': system,
          'messaging.operation.name': 'send',
          'messaging.destination.name': topic,
        };
        if (notSent) attrs['error.type'] = type;
        counts.set(key, { attrs, n: 1 });
      }
      for (const { attrs, n } of counts.values()) sent.add(n, attrs);
      if (failures > 0) {
        failed(r.span, firstError);
        r.span.setAttribute('cqrs.failed_count', failures);
      }
      r.span.end();
      const batch: Attributes = {
        'messaging.system': system,
        'messaging.operation.name': 'send',
      };
      if (ctx.error !== undefined) batch['error.type'] = errorType(ctx.error);
      relayDuration.record((performance.now() - r.start) / 1000, batch);
    },
  });

  // Consumer spans stay open until the consumer settles the delivery, so they carry its disposition.
  const pendingConsume = new Map<string, Span>();
  const consumeKey = (consumer: string, id: string) => `${consumer}\n${id}`;
  traced<ConsumeTraceContext>(
    TRACING_CHANNELS.consume,
    (ctx, active) => {
      const attributes: Attributes = {
        'messaging.system': system,
        'messaging.operation.name': 'process',
        'messaging.operation.type': 'process',
        'messaging.destination.name': ctx.destination,
        'messaging.consumer.group.name': ctx.consumer,
        'messaging.message.id': ctx.messageId,
        'messaging.message.conversation_id': ctx.correlationId,
        'cqrs.message.type': ctx.messageType,
        'cqrs.delivery_attempt': ctx.deliveryAttempt,
      };
      const remote = remoteSpanContext(ctx.traceparent, ctx.tracestate);
      const name = `process ${ctx.destination}`;
      if (remote === undefined)
        return tracer.startSpan(name, { kind: SpanKind.CONSUMER, attributes }, active);
      if (mode === 'continue') {
        return tracer.startSpan(
          name,
          { kind: SpanKind.CONSUMER, attributes },
          trace.setSpanContext(ROOT_CONTEXT, remote), // the parent only: cheaper than a copy of the active context
        );
      }
      const links: Link[] = [{ context: remote }];
      return tracer.startSpan(name, { kind: SpanKind.CONSUMER, attributes, links, root: true }, active);
    },
    {
      asyncEnd(ctx) {
        const s = started.get(ctx);
        if (s === undefined) return;
        started.delete(ctx);
        if (ctx.error !== undefined) failed(s.span, ctx.error);
        const attrs: Attributes = {
          'messaging.system': system,
          'messaging.operation.name': 'process',
          'messaging.destination.name': ctx.destination,
          'messaging.consumer.group.name': ctx.consumer,
          'cqrs.message.type': ctx.messageType,
        };
        if (ctx.error !== undefined) attrs['error.type'] = errorType(ctx.error);
        processDuration.record((performance.now() - s.start) / 1000, attrs);
        const key = consumeKey(ctx.consumer, ctx.messageId);
        pendingConsume.get(key)?.end();
        if (pendingConsume.size >= CONSUMER_PENDING_MAX) {
          for (const [k, span] of pendingConsume) {
            span.end();
            pendingConsume.delete(k);
            break;
          }
        }
        pendingConsume.set(key, s.span);
      },
    },
  );

  const onDisposition = guard((message: unknown) => {
    const d = message as ConsumeDispositionContext;
    const disposition =
      d.outcome === 'handled' ? 'ack:handled' : d.outcome === 'duplicate' ? 'ack:duplicate' : d.action;
    if (d.messageId !== undefined) {
      const key = consumeKey(d.consumer, d.messageId);
      const span = pendingConsume.get(key);
      if (span !== undefined) {
        pendingConsume.delete(key);
        span.setAttribute('cqrs.disposition', disposition);
        span.end();
      }
    }
    const key = `${d.destination}\n${d.consumer}\n${d.messageType ?? ''}\n${disposition}`;
    const attrs = () => {
      const a: Attributes = {
        'messaging.system': system,
        'messaging.destination.name': d.destination,
        'messaging.consumer.group.name': d.consumer,
        'cqrs.disposition': disposition,
      };
      if (d.messageType !== undefined) a['cqrs.message.type'] = d.messageType;
      return a;
    };
    consumed.add(key, attrs);
    if (d.action === 'dead-letter') deadLetters.add(key, attrs);
    else if (d.outcome === 'duplicate') duplicates.add(key, attrs);
  });
  subscribe(DIAGNOSTICS_CHANNELS.consumeDisposition, onDisposition);
  undo.push(() => unsubscribe(DIAGNOSTICS_CHANNELS.consumeDisposition, onDisposition));

  traced<SagaStepTraceContext>(
    TRACING_CHANNELS.sagaStep,
    (ctx, active) =>
      tracer.startSpan(
        `cqrs.saga ${ctx.action} ${ctx.saga}/${ctx.step}`,
        {
          kind: SpanKind.INTERNAL,
          attributes: {
            'cqrs.saga.name': ctx.saga,
            'cqrs.saga.id': ctx.sagaId,
            'cqrs.saga.step': ctx.step,
            'cqrs.saga.action': ctx.action,
            'cqrs.saga.fallback': ctx.fallback,
          },
        },
        active,
      ),
    {
      asyncEnd(ctx) {
        const seconds = finish(ctx);
        if (seconds === undefined) return;
        const attrs: Attributes = {
          'cqrs.saga.name': ctx.saga,
          'cqrs.saga.action': ctx.action,
          'cqrs.outcome': ctx.error === undefined ? 'ok' : 'error',
        };
        sagaSteps.add(1, attrs);
        sagaStepDuration.record(seconds, attrs);
        if (ctx.action === 'compensate') compensations.add(1, attrs);
      },
    },
  );

  traced<ProjectionBatchTraceContext>(
    TRACING_CHANNELS.projectionBatch,
    (ctx, active) =>
      tracer.startSpan(
        `cqrs.projection ${ctx.projection}`,
        {
          kind: SpanKind.INTERNAL,
          attributes: {
            'cqrs.projection': ctx.projection,
            'messaging.batch.message_count': ctx.size,
            'cqrs.projection.from': ctx.from,
            'cqrs.projection.to': ctx.to,
          },
        },
        active,
      ),
    {
      asyncEnd(ctx) {
        const seconds = finish(ctx);
        if (seconds === undefined) return;
        const attrs: Attributes = {
          'cqrs.projection': ctx.projection,
          'cqrs.outcome': ctx.error === undefined ? 'ok' : 'error',
        };
        projectionDuration.record(seconds, attrs);
        if (ctx.error === undefined) projectionEvents.add(ctx.size, { 'cqrs.projection': ctx.projection });
      },
    },
  );

  const relays = Object.entries(options.relays ?? {});
  if (relays.length > 0) {
    const backlog = meter.createObservableGauge('cqrs.outbox.backlog', {
      description: 'Outbox rows waiting to be published',
    });
    const oldest = meter.createObservableGauge('cqrs.outbox.oldest_pending.age', {
      unit: 's',
      description: 'Age of the oldest outbox row waiting to be published',
    });
    const dead = meter.createObservableGauge('cqrs.outbox.dead', { description: 'Outbox rows given up on' });
    const callback = async (result: {
      observe(instrument: unknown, value: number, attributes?: Attributes): void;
    }) => {
      await Promise.all(
        relays.map(async ([name, relay]) => {
          try {
            const h = await relay.health();
            const attrs = { 'cqrs.relay': name };
            result.observe(backlog, h.backlog, attrs);
            result.observe(oldest, h.oldestPendingAgeMs / 1000, attrs);
            result.observe(dead, h.dead, attrs);
          } catch (error) {
            diag.warn(`@cqrs-ts/otel: outbox relay ${name}: health() failed`, error);
          }
        }),
      );
    };
    meter.addBatchObservableCallback(callback, [backlog, oldest, dead]);
    undo.push(() => meter.removeBatchObservableCallback(callback, [backlog, oldest, dead]));
  }

  const projections = options.projections ?? [];
  if (projections.length > 0) {
    const lagEvents = meter.createObservableGauge('cqrs.projection.lag.events', {
      description: 'Events of its types not applied yet by an async projection (counted up to 10,000)',
    });
    const lagSeconds = meter.createObservableGauge('cqrs.projection.lag', {
      unit: 's',
      description: 'Age of the oldest event an async projection has not applied yet',
    });
    const callback = async (result: {
      observe(instrument: unknown, value: number, attributes?: Attributes): void;
    }) => {
      const asks = projections.flatMap((p) => p.projections.map((name) => ({ runner: p.runner, name })));
      await Promise.all(
        asks.map(async ({ runner, name }) => {
          try {
            const s = await runner.status(name);
            const attrs = { 'cqrs.projection': name };
            result.observe(lagEvents, s.lagEvents, attrs);
            result.observe(lagSeconds, s.lagMs / 1000, attrs);
          } catch (error) {
            diag.warn(`@cqrs-ts/otel: projection ${name}: status() failed`, error);
          }
        }),
      );
    };
    meter.addBatchObservableCallback(callback, [lagEvents, lagSeconds]);
    undo.push(() => meter.removeBatchObservableCallback(callback, [lagEvents, lagSeconds]));
  }

  let disposed = false;
  const dispose = () => {
    if (disposed) return;
    disposed = true;
    for (const u of undo.reverse()) u();
    for (const span of pendingConsume.values()) span.end();
    pendingConsume.clear();
  };
  return { dispose, [Symbol.dispose]: dispose, activatesSpans: storage !== undefined };
}

/** A monotonic count per low-cardinality key, reported by an observable counter of `name`. */
function tally(meter: Meter, name: string, options: { description: string }) {
  const counts = new Map<string, { attributes: Attributes; n: number }>();
  const instrument = meter.createObservableCounter(name, options);
  const report = (result: ObservableResult) => {
    for (const c of counts.values()) result.observe(c.n, c.attributes);
  };
  instrument.addCallback(report);
  return {
    add(key: string, attributes: () => Attributes): void {
      const c = counts.get(key);
      if (c === undefined) counts.set(key, { attributes: attributes(), n: 1 });
      else c.n++;
    },
    stop: () => instrument.removeCallback(report),
  };
}

/** The active span's context, else the trace context the message carries, else a root. */
function parentOf(active: Context, traceparent: string | undefined, tracestate: string | undefined): Context {
  if (trace.getSpan(active) !== undefined) return active;
  const remote = remoteSpanContext(traceparent, tracestate);
  return remote === undefined ? active : trace.setSpanContext(active, remote);
}

function failed(span: Span, error: unknown): void {
  if (error instanceof Error) span.recordException(error);
  span.setStatus({
    code: SpanStatusCode.ERROR,
    message: error instanceof Error ? error.message : String(error),
  });
  span.setAttribute('error.type', errorType(error));
}

/** A low-cardinality error type: the CqrsError code, else the error's class name. */
function errorType(error: unknown): string {
  if (typeof error === 'object' && error !== null) {
    const code = (error as { code?: unknown }).code;
    if (typeof code === 'string' && code.startsWith('CQRS_')) return code;
    const name = (error as { name?: unknown }).name;
    if (typeof name === 'string' && name.length > 0) return name;
  }
  return '_OTHER';
}

/** Instrumentation never throws into the code it observes. */
function guard<TArg>(fn: (arg: TArg) => void): (arg: TArg) => void {
  return (arg) => {
    try {
      fn(arg);
    } catch (error) {
      diag.warn('@cqrs-ts/otel: instrumentation failed', error);
    }
  };
}

/** The AsyncLocalStorage of the global `AsyncLocalStorageContextManager`, if that is the one registered. */
function contextStorage(): AsyncLocalStorage<Context> | undefined {
  try {
    const manager = (context as unknown as { _getContextManager?: () => unknown })._getContextManager?.();
    const als = (manager as { _asyncLocalStorage?: unknown } | undefined)?._asyncLocalStorage;
    if (
      als !== null &&
      typeof als === 'object' &&
      typeof (als as AsyncLocalStorage<Context>).run === 'function' &&
      typeof (als as AsyncLocalStorage<Context>).getStore === 'function'
    )
      return als as AsyncLocalStorage<Context>;
  } catch {
    // another context manager: spans are made but not entered
  }
  return undefined;
}
