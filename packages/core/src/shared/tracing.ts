import { tracingChannel } from 'node:diagnostics_channel';

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
} as const;

/** Context of `cqrs-ts:dispatch`: one command or query sent through a mediator. */
export interface DispatchTraceContext {
  readonly messageType: string;
  readonly kind: 'command' | 'query';
  /** The handler's name. */
  readonly handler: string;
  readonly requestId: string;
  readonly correlationId: string;
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
