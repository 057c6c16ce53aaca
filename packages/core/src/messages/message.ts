/** The three kinds of message. */
export const MESSAGE_KINDS = ['command', 'query', 'event'] as const;
export type MessageKind = (typeof MESSAGE_KINDS)[number];

/** Phantom key carrying a command's or query's result type. Exists in types only. */
export declare const RESULT_TYPE: unique symbol;

/** Tracing and audit data carried by every message. Frozen. */
export interface MessageMetadata {
  /** Unique id of this message, a time-ordered UUID v7. */
  readonly requestId: string;
  /** Groups every message of one business operation. Opaque string, not necessarily a UUID. */
  readonly correlationId: string;
  /** Request id of the message whose handling created this one, if any. */
  readonly causationId: string | undefined;
  /** Who asked (user or service id). */
  readonly requestedBy: string | undefined;
  /** When the message was created, ISO 8601 in UTC. */
  readonly requestedAt: string;
  readonly tenantId: string | undefined;
  /** W3C trace context of the creator, if any. */
  readonly traceparent: string | undefined;
  /** W3C `tracestate` that travels with `traceparent` (vendor trace data), if any. */
  readonly tracestate?: string | undefined;
  /**
   * W3C `baggage` (application key-value pairs) the application opted into carrying: present only when the
   * ambient context has it (`runWithContext({ baggage })`, or an HTTP edge with `baggage: true`).
   */
  readonly baggage?: string | undefined;
  /** Free string attributes, e.g. a schema version or a source. */
  readonly attributes: Readonly<Record<string, string>>;
  /**
   * A command's idempotency key: a repeat with the same key (and tenant) returns the first run's result
   * without running the handler again (needs a unit of work). Absent on most messages; never inherited.
   */
  readonly idempotencyKey?: string;
}

/** A message: plain, frozen data discriminated by `kind` and `type`. */
export interface Message<
  TKind extends MessageKind = MessageKind,
  TType extends string = string,
  TPayload = unknown,
> {
  readonly kind: TKind;
  readonly type: TType;
  readonly payload: TPayload;
  readonly metadata: MessageMetadata;
}

/** A request to change state, answered by exactly one handler with a `TResult`. */
export interface Command<TType extends string = string, TPayload = unknown, TResult = unknown>
  extends Message<'command', TType, TPayload> {
  readonly [RESULT_TYPE]?: TResult;
}

/** A request to read state, answered by exactly one handler with a `TResult`. */
export interface Query<TType extends string = string, TPayload = unknown, TResult = unknown>
  extends Message<'query', TType, TPayload> {
  readonly [RESULT_TYPE]?: TResult;
}

/** Something that happened; any number of handlers may react. */
export interface Event<TType extends string = string, TPayload = unknown>
  extends Message<'event', TType, TPayload> {}

/** Phantom key carrying a streaming query's item type. Exists in types only. */
export declare const ITEM_TYPE: unique symbol;

/** A query answered by a stream of `TItem` (see `mediator.stream`). */
export interface StreamQuery<TType extends string = string, TPayload = unknown, TItem = unknown>
  extends Message<'query', TType, TPayload> {
  readonly [ITEM_TYPE]?: TItem;
}

export type AnyMessage = Message<MessageKind, string, unknown>;
export type AnyStreamQuery = StreamQuery<string, unknown, unknown>;
export type AnyCommand = Command<string, unknown, unknown>;
export type AnyQuery = Query<string, unknown, unknown>;
export type AnyEvent = Event<string, unknown>;
/** A command or a query: something with exactly one handler and a result. */
export type AnyRequest = AnyCommand | AnyQuery;

/** The result type of a command or query. */
export type InferResult<TMessage> = TMessage extends { readonly [RESULT_TYPE]?: infer TResult }
  ? TResult
  : never;
/** The item type of a streaming query. */
export type InferItem<TMessage> = TMessage extends { readonly [ITEM_TYPE]?: infer TItem } ? TItem : never;
/** The payload type of a message. */
export type InferPayload<TMessage> = TMessage extends { readonly payload: infer TPayload } ? TPayload : never;
