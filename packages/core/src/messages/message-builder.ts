import type { AnyMessage, InferResult } from './message.ts';
import type { MetadataInit } from './metadata.ts';

/** What a builder needs from a definition. */
interface BuildableDefinition<TMessage extends AnyMessage, TInput> {
  readonly kind: TMessage['kind'];
  readonly type: TMessage['type'];
  parse(input: TInput, metadata?: MetadataInit): Promise<TMessage>;
}

/** What `executeWith` needs: a mediator. */
interface Dispatcher {
  send(message: never, options?: never): Promise<unknown>;
  query(message: never, options?: never): Promise<unknown>;
  publish(message: never, options?: never): Promise<void>;
}

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

/**
 * An immutable, typed builder: every call returns a new builder, so one can be reused as a template.
 * `build()` validates (schema, then the `validate` hook) and throws a `ValidationError` listing every issue.
 *
 * @example
 * const cmd = await PlaceOrder.builder().set('sku', 'A-1').with({ quantity: 2 }).correlate('c-1').by('u-1').build();
 */
export class MessageBuilder<TMessage extends AnyMessage, TInput> {
  readonly #definition: BuildableDefinition<TMessage, TInput>;
  readonly #fields: Readonly<Partial<TInput>>;
  readonly #metadata: MetadataInit;

  constructor(
    definition: BuildableDefinition<TMessage, TInput>,
    fields: Partial<TInput> = {},
    metadata: MetadataInit = {},
  ) {
    this.#definition = definition;
    this.#fields = fields;
    this.#metadata = metadata;
  }

  #next(fields: Partial<TInput>, metadata: MetadataInit): MessageBuilder<TMessage, TInput> {
    return new MessageBuilder(this.#definition, fields, metadata);
  }

  /** Sets one payload field. */
  set<TKey extends keyof TInput>(key: TKey, value: TInput[TKey]): MessageBuilder<TMessage, TInput> {
    return this.#next({ ...this.#fields, [key]: value }, this.#metadata);
  }

  /** Merges several payload fields. */
  with(fields: Partial<TInput>): MessageBuilder<TMessage, TInput> {
    return this.#next({ ...this.#fields, ...fields }, this.#metadata);
  }

  /** Sets the correlation id. */
  correlate(correlationId: string): MessageBuilder<TMessage, TInput> {
    return this.metadata({ correlationId });
  }

  /** Sets the causation id (the request that caused this one). */
  causedBy(causationId: string): MessageBuilder<TMessage, TInput> {
    return this.metadata({ causationId });
  }

  /** Sets who initiated the request. */
  by(requestedBy: string): MessageBuilder<TMessage, TInput> {
    return this.metadata({ requestedBy });
  }

  /** Sets the tenant. */
  tenant(tenantId: string): MessageBuilder<TMessage, TInput> {
    return this.metadata({ tenantId });
  }

  /** Adds one free attribute. */
  attribute(key: string, value: string): MessageBuilder<TMessage, TInput> {
    return this.metadata({ attributes: { ...this.#metadata.attributes, [key]: value } });
  }

  /** Merges metadata fields. */
  metadata(metadata: MetadataInit): MessageBuilder<TMessage, TInput> {
    const merged: Mutable<MetadataInit> = { ...this.#metadata, ...metadata };
    return this.#next(this.#fields, merged);
  }

  /** Validates and creates the message. */
  build(): Promise<TMessage> {
    return this.#definition.parse({ ...this.#fields } as TInput, this.#metadata);
  }

  /** Builds, then sends (command), queries (query) or publishes (event) through the mediator. */
  async executeWith(
    mediator: Dispatcher,
    options?: object,
  ): Promise<TMessage extends { readonly kind: 'event' } ? void : InferResult<TMessage>> {
    const message = await this.build();
    const m = mediator as unknown as Record<
      'send' | 'query' | 'publish',
      (msg: AnyMessage, o?: object) => Promise<never>
    >;
    if (message.kind === 'command') return m.send(message, options);
    if (message.kind === 'query') return m.query(message, options);
    return m.publish(message, options);
  }
}
