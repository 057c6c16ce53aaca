import { channel, tracingChannel } from 'node:diagnostics_channel';

/**
 * Tracing events of core, published on Node's `diagnostics_channel` tracing channels (`start`, `end`,
 * `asyncStart`, `asyncEnd`, `error` sub-channels). Nobody listening costs one `hasSubscribers` read per call.
 * Subscribers (e.g. `@cqrs-ts/opentelemetry`) receive the context object below; they must not change it.
 */
export const TRACING_CHANNELS = {
  dispatch: 'cqrs-ts:dispatch',
  consume: 'cqrs-ts:consume',
  relayPublish: 'cqrs-ts:relay.publish',
  projectionBatch: 'cqrs-ts:projection.batch',
  outboxAppend: 'cqrs-ts:outbox.append',
  sagaStep: 'cqrs-ts:saga.step',
} as const;

/**
 * Plain `diagnostics_channel` channels of core (one message per occurrence, no start/end):
 * `consumeDisposition` carries a {@link ConsumeDispositionContext} each time a consumer settles a delivery.
 */
export const DIAGNOSTICS_CHANNELS = {
  consumeDisposition: 'cqrs-ts:consume.disposition',
} as const;

/** Context of `cqrs-ts:dispatch`: one command or query sent through a mediator. */
export interface DispatchTraceContext {
  readonly messageType: string;
  readonly kind: 'command' | 'query';
  /** The handler's name. */
  readonly handler: string;
  readonly requestId: string;
  readonly correlationId: string;
  /** The message's W3C trace context (its caller's), when it carries one. */
  readonly traceparent: string | undefined;
  readonly tracestate: string | undefined;
  /**
   * Empty and writable: a `traceparent` (and `tracestate`) a subscriber writes here on `start` (its span's) becomes
   * the trace context of the messages the handler creates or emits, so the events it stages continue that span.
   */
  readonly carrier: Record<string, string>;
  /** Set by the channel on failure. */
  error?: unknown;
  /** Set by the channel on success. */
  result?: unknown;
}

/** Context of `cqrs-ts:consume`: one event a consumer dispatches to its handlers (once per attempt). */
export interface ConsumeTraceContext {
  readonly messageType: string;
  /** CloudEvents `id`. */
  readonly messageId: string;
  /** Topic, subject, stream or queue it came from. */
  readonly destination: string;
  /** The consumer's name. */
  readonly consumer: string;
  readonly deliveryAttempt: number;
  readonly correlationId: string;
  /** The producer's W3C trace context, when the message carries one. */
  readonly traceparent: string | undefined;
  readonly tracestate: string | undefined;
  error?: unknown;
  result?: unknown;
}

/** What `cqrs-ts:relay.publish` shows of each message of a batch. */
export interface RelayTraceMessage {
  readonly id: string;
  readonly type: string;
  /** Topic, subject or queue it goes to. */
  readonly topic: string;
  readonly key: string | null;
  readonly headers: Readonly<Record<string, string>>;
  /** Failed attempts before this one. */
  readonly attempts: number;
}

/** Context of `cqrs-ts:relay.publish`: one batch the outbox relay hands to its publisher. */
export interface RelayPublishTraceContext {
  readonly relayId: string;
  /** The batch (the relay's `OutboxMessage`s); `headers` carry `traceparent`/`tracestate` when there is one. */
  readonly messages: readonly RelayTraceMessage[];
  /**
   * One empty, writable carrier per message (same index). A subscriber writes `traceparent`/`tracestate`
   * (e.g. of its producer span) into it on `start`; the relay hands the publisher each message with the carrier's
   * entries over its headers. The stored outbox row is not changed (a retry starts from the original headers).
   */
  readonly carriers: readonly Record<string, string>[];
  error?: unknown;
  /** The publisher's per-message results, on success. */
  result?: unknown;
}

/** Context of `cqrs-ts:projection.batch`: one attempt to apply a batch of events and advance the checkpoint. */
export interface ProjectionBatchTraceContext {
  readonly projection: string;
  /** Checkpoint positions before and after the batch. */
  readonly from: string;
  readonly to: string;
  /** Events in the batch. */
  readonly size: number;
  error?: unknown;
  result?: unknown;
}

/** Context of `cqrs-ts:outbox.append`: a unit of work staging a committed handler's events in its outbox. */
export interface OutboxAppendTraceContext {
  /** The dispatch whose events these are. */
  readonly messageType: string;
  readonly correlationId: string;
  /** The events appended (`AnyEvent`s), in order (read only). */
  readonly events: readonly { readonly type: string; readonly metadata: { readonly requestId: string } }[];
  error?: unknown;
  result?: unknown;
}

/** Context of `cqrs-ts:saga.step`: one run of a saga step's `act` or `compensate` (its retries included). */
export interface SagaStepTraceContext {
  /** The saga definition's name. */
  readonly saga: string;
  readonly sagaId: string;
  /** The step's id (a fallback's own id when the fallback runs). */
  readonly step: string;
  readonly action: 'act' | 'compensate';
  /** `true` when this is a fallback running after its primary step failed. */
  readonly fallback: boolean;
  error?: unknown;
  result?: unknown;
}

/** Message of `cqrs-ts:consume.disposition`: how a consumer settled one delivery. */
export interface ConsumeDispositionContext {
  /** The consumer's name. */
  readonly consumer: string;
  /** Topic, subject, stream or queue it came from. */
  readonly destination: string;
  /** CloudEvents `type` and `id` of the delivery, when it had them. */
  readonly messageType: string | undefined;
  readonly messageId: string | undefined;
  readonly deliveryAttempt: number;
  /** `ack`, `retry`, `dead-letter` or `release`. */
  readonly action: string;
  /** For `ack`: `handled` or `duplicate`. */
  readonly outcome: string | undefined;
}

/** @internal */
export const outboxAppendChannel = tracingChannel<unknown, OutboxAppendTraceContext>(
  TRACING_CHANNELS.outboxAppend,
);
/** Published by `@cqrs-ts/saga` (hence on the SPI); context {@link SagaStepTraceContext}. */
export const sagaStepChannel = tracingChannel<unknown, SagaStepTraceContext>(TRACING_CHANNELS.sagaStep);
/** @internal */
export const consumeDispositionChannel = channel(DIAGNOSTICS_CHANNELS.consumeDisposition);
/** @internal */
export const projectionBatchChannel = tracingChannel<unknown, ProjectionBatchTraceContext>(
  TRACING_CHANNELS.projectionBatch,
);
/** @internal */
export const dispatchChannel = tracingChannel<unknown, DispatchTraceContext>(TRACING_CHANNELS.dispatch);
/** @internal */
export const consumeChannel = tracingChannel<unknown, ConsumeTraceContext>(TRACING_CHANNELS.consume);
/** @internal */
export const relayPublishChannel = tracingChannel<unknown, RelayPublishTraceContext>(
  TRACING_CHANNELS.relayPublish,
);
