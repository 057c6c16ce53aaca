import { ConfigurationError, SerializationError, UnknownMessageTypeError } from '../errors/cqrs-error.ts';
import type { AnyMessageDefinition, DecodeOptions, InferMessage } from './define-message.ts';
import type { AnyMessage } from './message.ts';

/** Looks up definitions by type to decode messages whose type is known only at run time. */
export interface MessageCatalog<TDefinition extends AnyMessageDefinition = AnyMessageDefinition> {
  readonly types: readonly string[];
  get(type: string): TDefinition | undefined;
  has(type: string): boolean;
  /** Decodes any message of the catalog. @throws UnknownMessageTypeError, SerializationError, ValidationError */
  fromJSON(value: unknown, options?: DecodeOptions): InferMessage<TDefinition>;
  /** Like `fromJSON`, also for asynchronous schemas. */
  decode(value: unknown, options?: DecodeOptions): Promise<InferMessage<TDefinition>>;
}

const DEFAULT_MAX_JSON = 1024 * 1024;

function peekType(value: unknown, options?: DecodeOptions): { type: string; data: unknown } {
  let data = value;
  if (typeof value === 'string') {
    const max = options?.maxLength ?? DEFAULT_MAX_JSON;
    if (value.length > max)
      throw new SerializationError(`message JSON is ${value.length} chars, more than the ${max} allowed`);
    try {
      data = JSON.parse(value);
    } catch (cause) {
      throw new SerializationError('message is not valid JSON', { cause });
    }
  }
  const type = (data as { type?: unknown } | null)?.type;
  if (typeof type !== 'string') throw new SerializationError('message JSON has no type');
  return { type, data };
}

/** Creates a catalog of definitions. Two definitions with one type are a {@link ConfigurationError}. */
export function createMessageCatalog<const TDefinitions extends readonly AnyMessageDefinition[]>(
  definitions: TDefinitions,
): MessageCatalog<TDefinitions[number]> {
  const byType = new Map<string, TDefinitions[number]>();
  for (const definition of definitions) {
    const existing = byType.get(definition.type);
    if (existing !== undefined && existing !== definition) {
      throw new ConfigurationError(`two message definitions share the type "${definition.type}"`);
    }
    byType.set(definition.type, definition);
  }
  const lookup = (type: string) => {
    const definition = byType.get(type);
    if (definition === undefined) throw new UnknownMessageTypeError(type);
    return definition;
  };
  return Object.freeze({
    types: Object.freeze([...byType.keys()]),
    get: (type: string) => byType.get(type),
    has: (type: string) => byType.has(type),
    fromJSON(value: unknown, options?: DecodeOptions) {
      const { type, data } = peekType(value, options);
      return lookup(type).fromJSON(data, options) as InferMessage<TDefinitions[number]>;
    },
    async decode(value: unknown, options?: DecodeOptions) {
      const { type, data } = peekType(value, options);
      return (await lookup(type).decode(data, options)) as InferMessage<TDefinitions[number]>;
    },
  });
}

/** Serializes a message to JSON text. @throws SerializationError when the payload cannot be serialized. */
export function serializeMessage(message: AnyMessage): string {
  try {
    return JSON.stringify(message);
  } catch (cause) {
    throw new SerializationError(`${message.type} cannot be serialized to JSON`, { cause });
  }
}
