import { currentContext } from '../context/ambient-context.ts';
import type { ExecutionContext } from '../context/execution-context.ts';
import { EMPTY_EXECUTION_CONTEXT } from '../context/execution-context.ts';
import type { ValidationIssue } from '../errors/cqrs-error.ts';
import { ConfigurationError, CqrsError, SerializationError, ValidationError } from '../errors/cqrs-error.ts';
import { deepFreeze, FREEZE_MESSAGES } from '../internal/freeze.ts';
import { NEVER_ABORTED } from '../shared/abort.ts';
import type { JsonSafe, JsonSafeCheck } from './json-safe.ts';
import type {
  AnyCommand,
  AnyEvent,
  AnyMessage,
  AnyQuery,
  AnyRequest,
  AnyStreamQuery,
  Command,
  Event,
  Message,
  MessageKind,
  MessageMetadata,
  Query,
  StreamQuery,
} from './message.ts';
import { MessageBuilder } from './message-builder.ts';
import type { MetadataInit } from './metadata.ts';
import { createMetadata } from './metadata.ts';
import type { StandardSchemaV1 } from './standard-schema.ts';
import type { ValidateHookResult } from './validation.ts';
import { fromStandardIssues, hasErrors, normalizeHookResult } from './validation.ts';

/** Context handed to `validate` hooks. */
export interface ValidationContext {
  readonly execution: ExecutionContext;
  readonly signal: AbortSignal;
}

/** A business-rule check run after the schema. Return the issues found, or nothing. */
export type ValidateHook<TPayload> = (
  payload: TPayload,
  context: ValidationContext,
) => ValidateHookResult | Promise<ValidateHookResult>;

/** A denial with a reason. */
export interface AuthorizationDenial {
  readonly allowed: false;
  readonly reason?: string;
  readonly code?: string;
}
/**
 * What an authorization hook decides. Only `true` and `{ allowed: true }` allow; `false` denies with a generic
 * reason, an {@link AuthorizationDenial} with its own. A hook that returns nothing denies too (fail closed).
 */
export type AuthorizationDecision = boolean | AuthorizationDenial | { readonly allowed: true };

/** Context handed to authorization hooks and policies. */
export interface AuthorizationContext {
  readonly execution: ExecutionContext;
  readonly signal: AbortSignal;
}

/** Decides whether a message may be dispatched. */
export type AuthorizeHook<TMessage> = (
  message: TMessage,
  context: AuthorizationContext,
) => AuthorizationDecision | Promise<AuthorizationDecision>;

/**
 * Hooks given to `.withPayload<P>(hooks)`, typed against the payload `P` (no annotation or cast needed). Each
 * may be given once: here or in the `define*` options.
 */
export interface PayloadHooks<TPayload, TMessage> {
  /** Business-rule check, run after the schema by the validation behavior and by `parse`. */
  readonly validate?: ValidateHook<TPayload>;
  /** Authorization hook, run by the authorization behavior. */
  readonly authorize?: AuthorizeHook<TMessage>;
}

/** Hooks of `.withPayload<P>(hooks)` on an event definition. */
export interface EventPayloadHooks<TPayload, TMessage> extends PayloadHooks<TPayload, TMessage> {
  /** Derives the ordering key from the payload (see {@link DefineEventOptions.key}). */
  readonly key?: (payload: TPayload) => string | undefined;
}

/** Options shared by every `define*` function. */
export interface DefineOptions<TPayload, TMessage> {
  /** Standard Schema (zod, valibot, arktype, ...) validating the payload. */
  readonly schema?: StandardSchemaV1;
  /**
   * Standard Schema of the result (of each item, for a stream query). It describes responses, e.g. in the
   * OpenAPI document of `@cqrs-ts/http`; the mediator does not check results against it. The result type still
   * comes from `.returns<R>()` (`.yields<T>()`). Events have no result.
   */
  readonly result?: StandardSchemaV1;
  /** Business-rule check, run after the schema by the validation behavior and by `parse`. */
  readonly validate?: ValidateHook<TPayload>;
  /** Authorization hook, run by the authorization behavior. */
  readonly authorize?: AuthorizeHook<TMessage>;
  /** Tags used to target behaviors. */
  readonly tags?: readonly string[];
  readonly description?: string;
}

/** Options of {@link defineEvent}. */
export interface DefineEventOptions<TPayload, TMessage>
  extends Omit<DefineOptions<TPayload, TMessage>, 'result'> {
  /** Broker topic or subject. Defaults to the event type. */
  readonly topic?: string;
  /** Derives the ordering key (e.g. the aggregate id) from the payload. Events with one key keep their order. */
  readonly key?: (payload: TPayload) => string | undefined;
  /**
   * `domain` events stay in the process; `notification` events announce a fact to other services;
   * `ecst` (event-carried state transfer) events carry the full state of an entity.
   */
  readonly category?: EventCategory;
}

export const EVENT_CATEGORIES = ['domain', 'notification', 'ecst'] as const;
export type EventCategory = (typeof EVENT_CATEGORIES)[number];

/** Limits applied when decoding untrusted JSON. */
export interface DecodeOptions {
  /** Largest accepted JSON text, in UTF-16 code units. Default 1 MiB. */
  readonly maxLength?: number;
}

/** Members every message definition has. */
export interface MessageDefinitionBase<TMessage extends AnyMessage, TInput> {
  readonly kind: TMessage['kind'];
  /** The stable, namespaced message type, e.g. `orders.place-order`. */
  readonly type: TMessage['type'];
  readonly schema: StandardSchemaV1 | undefined;
  /** Standard Schema of the result (of each item, for a stream query), if declared. */
  readonly result: StandardSchemaV1 | undefined;
  readonly tags: readonly string[];
  readonly description: string | undefined;
  readonly validate: ValidateHook<TMessage['payload']> | undefined;
  readonly authorize: AuthorizeHook<TMessage> | undefined;
  /**
   * Creates a frozen message. The payload object is frozen in place (deeply); it is not validated against the
   * schema here (the validation behavior does that at dispatch, `parse` does it now).
   */
  create(payload: TMessage['payload'], metadata?: MetadataInit): TMessage;
  /** Validates `input` with the schema and the `validate` hook, then creates the message from the schema's output. */
  parse(input: TInput, metadata?: MetadataInit): Promise<TMessage>;
  /** Validates the payload (schema, then hook) and returns every issue found (warnings included). */
  check(payload: unknown, context?: Partial<ValidationContext>): Promise<readonly ValidationIssue[]>;
  /** True when `value` is a message of this definition. */
  is(value: unknown): value is TMessage;
  /**
   * Rebuilds a message from its JSON form (an object or a JSON string). Validates the envelope and, when the
   * definition has a synchronous schema, the payload.
   * @throws SerializationError for malformed input, ValidationError for an invalid payload or metadata.
   */
  fromJSON(value: unknown, options?: DecodeOptions): TMessage;
  /** Like {@link fromJSON}, also for asynchronous schemas. */
  decode(value: unknown, options?: DecodeOptions): Promise<TMessage>;
  /** A fluent, immutable builder that validates on `build()`. */
  builder(): MessageBuilder<TMessage, TInput>;
}

/** Defines a command type; `.returns<R>()` sets its result type. */
export interface CommandDefinition<TType extends string, TPayload, TResult = void, TInput = TPayload>
  extends MessageDefinitionBase<Command<TType, TPayload, TResult>, TInput> {
  /**
   * Declares the payload type (when there is no schema to infer it from), and optionally hooks typed against it.
   * The type must survive JSON unchanged ({@link JsonSafe}): messages travel as JSON through the outbox and brokers.
   */
  withPayload<$Payload>(
    this: JsonSafeCheck<$Payload>,
    hooks?: PayloadHooks<$Payload, Command<TType, $Payload, TResult>>,
  ): CommandDefinition<TType, $Payload, TResult, $Payload>;
  /** Declares the result type. Type-only. */
  returns<$Result>(): CommandDefinition<TType, TPayload, $Result, TInput>;
}

/** Defines a query type; `.returns<R>()` sets its result type. */
export interface QueryDefinition<TType extends string, TPayload, TResult = unknown, TInput = TPayload>
  extends MessageDefinitionBase<Query<TType, TPayload, TResult>, TInput> {
  /** Set on paginated queries (`definePaginatedQuery`): the largest page size they accept. */
  readonly paging: { readonly maxPageSize: number } | undefined;
  /** Declares the payload type and optionally hooks typed against it (see `CommandDefinition.withPayload`). */
  withPayload<$Payload>(
    this: JsonSafeCheck<$Payload>,
    hooks?: PayloadHooks<$Payload, Query<TType, $Payload, TResult>>,
  ): QueryDefinition<TType, $Payload, TResult, $Payload>;
  returns<$Result>(): QueryDefinition<TType, TPayload, $Result, TInput>;
}

/** Defines a streaming query; `.yields<T>()` sets the item type. Handled by `handleStream`, dispatched by `mediator.stream`. */
export interface StreamQueryDefinition<TType extends string, TPayload, TItem = unknown, TInput = TPayload>
  extends MessageDefinitionBase<StreamQuery<TType, TPayload, TItem>, TInput> {
  readonly streaming: true;
  /** Declares the payload type and optionally hooks typed against it (see `CommandDefinition.withPayload`). */
  withPayload<$Payload>(
    this: JsonSafeCheck<$Payload>,
    hooks?: PayloadHooks<$Payload, StreamQuery<TType, $Payload, TItem>>,
  ): StreamQueryDefinition<TType, $Payload, TItem, $Payload>;
  yields<$Item>(): StreamQueryDefinition<TType, TPayload, $Item, TInput>;
}

/** Defines an event type. */
export interface EventDefinition<TType extends string, TPayload, TInput = TPayload>
  extends MessageDefinitionBase<Event<TType, TPayload>, TInput> {
  readonly topic: string;
  readonly category: EventCategory;
  /**
   * Declares the payload type and optionally hooks typed against it, the ordering `key` included (see
   * `CommandDefinition.withPayload`).
   */
  withPayload<$Payload>(
    this: JsonSafeCheck<$Payload>,
    hooks?: EventPayloadHooks<$Payload, Event<TType, $Payload>>,
  ): EventDefinition<TType, $Payload, $Payload>;
}

/** Any command definition. */
export interface AnyCommandDefinition extends AnyMessageDefinition {
  readonly kind: 'command';
  create(payload: never, metadata?: MetadataInit): AnyCommand;
}
/** Any query definition (request-response or streaming). */
export interface AnyQueryDefinition extends AnyMessageDefinition {
  readonly kind: 'query';
  create(payload: never, metadata?: MetadataInit): AnyQuery;
}
/** Any streaming query definition. */
export interface AnyStreamQueryDefinition extends AnyMessageDefinition {
  readonly kind: 'query';
  readonly streaming: true;
  create(payload: never, metadata?: MetadataInit): AnyStreamQuery;
}
/** Any event definition. */
export interface AnyEventDefinition extends AnyMessageDefinition {
  readonly kind: 'event';
  readonly topic: string;
  readonly category: EventCategory;
  create(payload: never, metadata?: MetadataInit): AnyEvent;
}
/** Any message definition. */
export interface AnyMessageDefinition {
  readonly kind: MessageKind;
  /** True for streaming queries. */
  readonly streaming?: boolean;
  /** Set on paginated queries: the largest page size they accept. */
  readonly paging?: { readonly maxPageSize: number } | undefined;
  readonly type: string;
  readonly schema: StandardSchemaV1 | undefined;
  /** Standard Schema of the result (of each item, for a stream query), if declared. */
  readonly result?: StandardSchemaV1 | undefined;
  readonly tags: readonly string[];
  readonly description: string | undefined;
  readonly validate: ValidateHook<never> | undefined;
  readonly authorize: AuthorizeHook<never> | undefined;
  is(value: unknown): boolean;
  check(payload: unknown, context?: Partial<ValidationContext>): Promise<readonly ValidationIssue[]>;
  fromJSON(value: unknown, options?: DecodeOptions): AnyMessage;
  decode(value: unknown, options?: DecodeOptions): Promise<AnyMessage>;
}

/** The message type a definition creates. */
export type InferMessage<TDefinition> = TDefinition extends {
  create(...args: never[]): infer TMessage extends AnyMessage;
}
  ? TMessage
  : never;

/** Any command or query definition. */
export interface AnyRequestDefinition extends AnyMessageDefinition {
  readonly kind: 'command' | 'query';
  create(payload: never, metadata?: MetadataInit): AnyRequest;
}

/** Payload for messages that carry no data. */
export type EmptyPayload = Readonly<Record<string, never>>;

const TYPE_RE = /^[A-Za-z][A-Za-z0-9_.:/-]{0,199}$/;
const DEFAULT_MAX_JSON = 1024 * 1024;

/** @internal Runs the schema (sync or async) and the hook; returns every issue. */
export async function checkPayload(
  definition: Pick<AnyMessageDefinition, 'type' | 'schema' | 'validate'>,
  payload: unknown,
  context: ValidationContext,
): Promise<{ issues: readonly ValidationIssue[]; value: unknown }> {
  let value = payload;
  if (definition.schema) {
    const result = await definition.schema['~standard'].validate(payload);
    if (result.issues) return { issues: fromStandardIssues(result.issues), value: undefined };
    value = result.value;
  }
  if (definition.validate) {
    let issues: readonly ValidationIssue[];
    try {
      issues = normalizeHookResult(
        await (definition.validate as ValidateHook<unknown>)(value, context),
        definition.type,
      );
    } catch (error) {
      if (error instanceof ValidationError) return { issues: error.issues, value: undefined };
      throw error;
    }
    return { issues, value };
  }
  return { issues: [], value };
}

function validationContext(partial?: Partial<ValidationContext>): ValidationContext {
  return {
    execution: partial?.execution ?? currentContext()?.execution ?? EMPTY_EXECUTION_CONTEXT,
    signal: partial?.signal ?? NEVER_ABORTED,
  };
}

function readJson(value: unknown, options: DecodeOptions | undefined): Record<string, unknown> {
  let data = value;
  if (typeof value === 'string' || value instanceof Uint8Array) {
    const text = typeof value === 'string' ? value : new TextDecoder('utf-8', { fatal: false }).decode(value);
    const max = options?.maxLength ?? DEFAULT_MAX_JSON;
    if (text.length > max)
      throw new SerializationError(`message JSON is ${text.length} chars, more than the ${max} allowed`);
    try {
      data = JSON.parse(text);
    } catch (cause) {
      throw new SerializationError('message is not valid JSON', { cause });
    }
  }
  if (typeof data !== 'object' || data === null || Array.isArray(data)) {
    throw new SerializationError('message JSON must be an object with kind, type, payload and metadata');
  }
  return data as Record<string, unknown>;
}

/** @internal Validates the envelope and metadata of a decoded message. */
export function readEnvelope(
  data: Record<string, unknown>,
  kind: MessageKind,
  type: string,
): { payload: unknown; metadata: MetadataInit } {
  if (data.kind !== kind)
    throw new SerializationError(`expected a ${kind}, got ${String(data.kind).slice(0, 40)}`);
  if (data.type !== type)
    throw new SerializationError(`expected type ${type}, got ${String(data.type).slice(0, 200)}`);
  const meta = data.metadata;
  if (typeof meta !== 'object' || meta === null || Array.isArray(meta)) {
    throw new SerializationError(`${type}: metadata is missing`);
  }
  const m = meta as Record<string, unknown>;
  const missing = ['requestId', 'correlationId', 'requestedAt'].filter((k) => typeof m[k] !== 'string');
  if (missing.length > 0) {
    throw new ValidationError(
      type,
      missing.map((k) => ({ path: ['metadata', k], message: `${k} is required`, code: 'required' })),
    );
  }
  const init: Record<string, unknown> = {};
  for (const key of [
    'requestId',
    'correlationId',
    'causationId',
    'requestedBy',
    'requestedAt',
    'tenantId',
    'traceparent',
    'tracestate',
    'baggage',
    'attributes',
    'idempotencyKey',
  ]) {
    const v = m[key];
    if (v !== undefined && v !== null) init[key] = v;
  }
  return { payload: data.payload, metadata: init as MetadataInit };
}

class MessageDefinitionImpl {
  readonly kind: MessageKind;
  readonly type: string;
  readonly schema: StandardSchemaV1 | undefined;
  readonly result: StandardSchemaV1 | undefined;
  readonly tags: readonly string[];
  readonly description: string | undefined;
  readonly validate: ValidateHook<unknown> | undefined;
  readonly authorize: AuthorizeHook<never> | undefined;
  readonly topic: string | undefined;
  readonly category: EventCategory | undefined;
  readonly streaming: boolean;
  readonly paging: { readonly maxPageSize: number } | undefined;
  readonly #key: ((payload: unknown) => string | undefined) | undefined;
  readonly #invariant: ((payload: Record<string, unknown>) => void) | undefined;
  readonly #options: DefineEventOptions<unknown, never> | undefined;

  constructor(
    kind: MessageKind,
    type: string,
    options: DefineEventOptions<unknown, never> | undefined,
    invariant?: (payload: Record<string, unknown>) => void,
    streaming = false,
    maxPageSize?: number,
  ) {
    if (typeof type !== 'string' || !TYPE_RE.test(type)) {
      throw new ConfigurationError(
        `invalid message type ${JSON.stringify(String(type).slice(0, 80))}: use letters, digits and . _ - : / (at most 200 chars, starting with a letter)`,
      );
    }
    if (options !== undefined && (typeof options !== 'object' || options === null || Array.isArray(options)))
      throw new ConfigurationError(`${type}: options must be an object { schema, validate, authorize, ... }`);
    const schema = options?.schema;
    if (schema !== undefined && typeof schema?.['~standard']?.validate !== 'function') {
      throw new ConfigurationError(`${type}: schema must implement Standard Schema v1`);
    }
    const result = (options as DefineOptions<unknown, never> | undefined)?.result;
    if (result !== undefined) {
      if (kind === 'event') throw new ConfigurationError(`${type}: events have no result schema`);
      if (typeof result?.['~standard']?.validate !== 'function')
        throw new ConfigurationError(`${type}: result must implement Standard Schema v1`);
    }
    for (const hook of ['validate', 'authorize', 'key'] as const) {
      const value = options?.[hook];
      if (value !== undefined && typeof value !== 'function')
        throw new ConfigurationError(`${type}: ${hook} must be a function`);
    }
    if (options?.key !== undefined && kind !== 'event')
      throw new ConfigurationError(`${type}: only events have an ordering key`);
    this.#options = options;
    this.kind = kind;
    this.type = type;
    this.schema = schema;
    this.result = result;
    this.tags = Object.freeze([...(options?.tags ?? [])]);
    this.description = options?.description;
    this.validate = options?.validate as ValidateHook<unknown> | undefined;
    this.authorize = options?.authorize;
    this.#invariant = invariant;
    this.streaming = streaming;
    this.paging = maxPageSize === undefined ? undefined : Object.freeze({ maxPageSize });
    if (kind === 'event') {
      this.topic = options?.topic ?? type;
      if (typeof this.topic !== 'string' || !TYPE_RE.test(this.topic)) {
        throw new ConfigurationError(
          `${type}: invalid topic ${JSON.stringify(String(this.topic).slice(0, 80))}`,
        );
      }
      this.#key = options?.key as ((payload: unknown) => string | undefined) | undefined;
      this.category = options?.category ?? 'domain';
      if (!EVENT_CATEGORIES.includes(this.category)) {
        throw new ConfigurationError(`${type}: unknown event category ${String(this.category)}`);
      }
    } else {
      this.topic = undefined;
      this.category = undefined;
      this.#key = undefined;
    }
  }

  create(payload: unknown, metadata?: MetadataInit): AnyMessage {
    if (typeof payload !== 'object' || payload === null || Array.isArray(payload)) {
      throw new ValidationError(this.type, [
        { path: ['payload'], message: 'payload must be an object', code: 'invalid_type' },
      ]);
    }
    this.#invariant?.(payload as Record<string, unknown>);
    return this.#freeze(payload, createMetadata(metadata));
  }

  #freeze(payload: unknown, metadata: MessageMetadata): AnyMessage {
    if (this.kind === 'event') {
      const event = {
        kind: this.kind,
        type: this.type,
        payload,
        metadata,
        topic: this.topic,
        key: this.#keyOf(payload),
      };
      if (!FREEZE_MESSAGES) return event;
      deepFreeze(payload);
      return Object.freeze(event);
    }
    if (!FREEZE_MESSAGES) return { kind: this.kind, type: this.type, payload, metadata };
    return Object.freeze({ kind: this.kind, type: this.type, payload: deepFreeze(payload), metadata });
  }

  #keyOf(payload: unknown): string | undefined {
    if (this.#key === undefined) return undefined;
    const key = this.#key(payload);
    if (key !== undefined && (typeof key !== 'string' || key.length === 0 || key.length > 512)) {
      throw new ValidationError(this.type, [
        {
          path: ['key'],
          message: 'ordering key must be a non-empty string of at most 512 chars',
          code: 'invalid_key',
        },
      ]);
    }
    return key;
  }

  async check(payload: unknown, context?: Partial<ValidationContext>): Promise<readonly ValidationIssue[]> {
    return (await checkPayload(this, payload, validationContext(context))).issues;
  }

  async parse(input: unknown, metadata?: MetadataInit): Promise<AnyMessage> {
    const { issues, value } = await checkPayload(this, input, validationContext());
    if (hasErrors(issues)) throw new ValidationError(this.type, issues);
    return this.create(this.#keepPaging(input, value), metadata);
  }

  is(value: unknown): boolean {
    return (
      typeof value === 'object' &&
      value !== null &&
      (value as AnyMessage).type === this.type &&
      (value as AnyMessage).kind === this.kind &&
      typeof (value as AnyMessage).metadata === 'object'
    );
  }

  fromJSON(value: unknown, options?: DecodeOptions): AnyMessage {
    const { payload, metadata } = readEnvelope(readJson(value, options), this.kind, this.type);
    let validated = payload;
    if (this.schema) {
      const result = this.schema['~standard'].validate(payload);
      if (result instanceof Promise) {
        throw new SerializationError(
          `${this.type} has an asynchronous schema: use decode() instead of fromJSON()`,
        );
      }
      if (result.issues) throw new ValidationError(this.type, fromStandardIssues(result.issues));
      validated = this.#keepPaging(payload, result.value);
    }
    return this.#rebuild(validated, metadata);
  }

  async decode(value: unknown, options?: DecodeOptions): Promise<AnyMessage> {
    const { payload, metadata } = readEnvelope(readJson(value, options), this.kind, this.type);
    let validated = payload;
    if (this.schema) {
      const result = await this.schema['~standard'].validate(payload);
      if (result.issues) throw new ValidationError(this.type, fromStandardIssues(result.issues));
      validated = this.#keepPaging(payload, result.value);
    }
    return this.#rebuild(validated, metadata);
  }

  #rebuild(payload: unknown, metadata: MetadataInit): AnyMessage {
    if (typeof payload !== 'object' || payload === null || Array.isArray(payload)) {
      throw new ValidationError(this.type, [
        { path: ['payload'], message: 'payload must be an object', code: 'invalid_type' },
      ]);
    }
    this.#invariant?.(payload as Record<string, unknown>);
    return this.#freeze(payload, createMetadata(metadata, false));
  }

  // Paginated queries validate filters with the user's schema but keep page fields even if it strips them.
  #keepPaging(input: unknown, value: unknown): unknown {
    if (this.#invariant === undefined || typeof input !== 'object' || input === null) return value;
    const i = input as Record<string, unknown>;
    return { ...(value as object), page: i.page, pageSize: i.pageSize };
  }

  withPayload(hooks?: EventPayloadHooks<unknown, never>): unknown {
    if (hooks === undefined) return this;
    if (typeof hooks !== 'object' || hooks === null || Array.isArray(hooks))
      throw new ConfigurationError(
        `${this.type}: withPayload(hooks) takes an object { validate, authorize${this.kind === 'event' ? ', key' : ''} }`,
      );
    const given = this.#options ?? {};
    for (const name of Object.keys(hooks)) {
      if (name !== 'validate' && name !== 'authorize' && name !== 'key')
        throw new ConfigurationError(
          `${this.type}: withPayload does not take ${JSON.stringify(name.slice(0, 40))}`,
        );
      if (given[name as keyof typeof given] !== undefined)
        throw new ConfigurationError(
          `${this.type}: ${name} is given twice (in the definition's options and in withPayload)`,
        );
    }
    return createDefinition(
      this.kind,
      this.type,
      { ...given, ...hooks },
      this.#invariant,
      this.streaming,
      this.paging?.maxPageSize,
    );
  }

  returns(): this {
    return this;
  }

  yields(): this {
    return this;
  }

  builder(): MessageBuilder<AnyMessage, unknown> {
    return new MessageBuilder(this as never);
  }
}

/** @internal */
export function createDefinition(
  kind: MessageKind,
  type: string,
  options: DefineEventOptions<unknown, never> | undefined,
  invariant?: (payload: Record<string, unknown>) => void,
  streaming = false,
  maxPageSize?: number,
): unknown {
  return Object.freeze(new MessageDefinitionImpl(kind, type, options, invariant, streaming, maxPageSize));
}

type Out<TSchema extends StandardSchemaV1> = StandardSchemaV1.InferOutput<TSchema>;
type In<TSchema extends StandardSchemaV1> = StandardSchemaV1.InferInput<TSchema>;

/**
 * Defines a command: a request to change state, handled by exactly one handler. The payload type comes from
 * the schema, or from `.withPayload<P>()`; `.returns<R>()` sets the result type (default `void`).
 *
 * @example
 * const PlaceOrder = defineCommand('orders.place-order', { schema: z.object({ sku: z.string() }) })
 *   .returns<{ orderId: string }>();
 * const { orderId } = await mediator.send(PlaceOrder.create({ sku: 'A-1' }));
 */
export function defineCommand<const TType extends string, TSchema extends StandardSchemaV1>(
  type: TType,
  options: DefineOptions<Out<TSchema>, Command<TType, Out<TSchema>, void>> & { readonly schema: TSchema },
): CommandDefinition<TType, Out<TSchema>, void, In<TSchema>>;
export function defineCommand<const TType extends string>(
  type: TType,
  options?: DefineOptions<EmptyPayload, Command<TType, EmptyPayload, void>> & { readonly schema?: undefined },
): CommandDefinition<TType, EmptyPayload, void, EmptyPayload>;
export function defineCommand(type: string, options?: object): unknown {
  return createDefinition('command', type, options as DefineOptions<unknown, never>);
}

/**
 * Defines a query: a request to read state, handled by exactly one handler.
 *
 * @example
 * const GetOrder = defineQuery('orders.get-order').withPayload<{ id: string }>().returns<Order | null>();
 */
export function defineQuery<const TType extends string, TSchema extends StandardSchemaV1>(
  type: TType,
  options: DefineOptions<Out<TSchema>, Query<TType, Out<TSchema>, unknown>> & { readonly schema: TSchema },
): QueryDefinition<TType, Out<TSchema>, unknown, In<TSchema>>;
export function defineQuery<const TType extends string>(
  type: TType,
  options?: DefineOptions<EmptyPayload, Query<TType, EmptyPayload, unknown>> & {
    readonly schema?: undefined;
  },
): QueryDefinition<TType, EmptyPayload, unknown, EmptyPayload>;
export function defineQuery(type: string, options?: object): unknown {
  return createDefinition('query', type, options as DefineOptions<unknown, never>);
}

/**
 * Defines an event: a fact that happened. Any number of handlers may react to it.
 *
 * @example
 * const OrderPlaced = defineEvent('orders.order-placed', { topic: 'orders' }).withPayload<{ orderId: string }>();
 */
export function defineEvent<const TType extends string, TSchema extends StandardSchemaV1>(
  type: TType,
  options: DefineEventOptions<Out<TSchema>, Event<TType, Out<TSchema>>> & { readonly schema: TSchema },
): EventDefinition<TType, Out<TSchema>, In<TSchema>>;
export function defineEvent<const TType extends string>(
  type: TType,
  options?: Omit<DefineEventOptions<EmptyPayload, Event<TType, EmptyPayload>>, 'key'> & {
    readonly schema?: undefined;
    /** Annotate the parameter with the payload type you declare with `withPayload`. */
    readonly key?: (payload: never) => string | undefined;
  },
): EventDefinition<TType, EmptyPayload, EmptyPayload>;
export function defineEvent(type: string, options?: object): unknown {
  return createDefinition('event', type, options as DefineEventOptions<unknown, never>);
}

/**
 * Defines a streaming query: its handler yields items (`handleStream`), `mediator.stream(query)` iterates them.
 *
 * @example
 * const TailOrders = defineStreamQuery('orders.tail').withPayload<{ since: string }>().yields<Order>();
 */
export function defineStreamQuery<const TType extends string, TSchema extends StandardSchemaV1>(
  type: TType,
  options: DefineOptions<Out<TSchema>, StreamQuery<TType, Out<TSchema>, unknown>> & {
    readonly schema: TSchema;
  },
): StreamQueryDefinition<TType, Out<TSchema>, unknown, In<TSchema>>;
export function defineStreamQuery<const TType extends string>(
  type: TType,
  options?: DefineOptions<EmptyPayload, StreamQuery<TType, EmptyPayload, unknown>> & {
    readonly schema?: undefined;
  },
): StreamQueryDefinition<TType, EmptyPayload, unknown, EmptyPayload>;
export function defineStreamQuery(type: string, options?: object): unknown {
  return createDefinition('query', type, options as DefineOptions<unknown, never>, undefined, true);
}

/** Throws a typed error when a message is of the wrong kind (used by the mediator). */
export function assertKind(message: Message, kind: MessageKind): void {
  if (message.kind !== kind) {
    throw new CqrsError('CQRS_WRONG_MESSAGE_KIND', `${message.type} is a ${message.kind}, not a ${kind}`);
  }
}
