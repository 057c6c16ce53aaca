import { brotliCompressSync, brotliDecompressSync, gunzipSync, gzipSync } from 'node:zlib';
import { CqrsError, SerializationError, UnknownMessageTypeError } from '../errors/cqrs-error.ts';
import type { AnyEvent, MessageMetadata } from '../messages/message.ts';
import type { MessageCatalog } from '../messages/message-catalog.ts';

/**
 * The wire envelope is CloudEvents 1.0 in binary content mode: the context attributes travel as broker
 * headers (each broker package applies its protocol binding's prefix), the data is the event's payload.
 *
 * Attributes written for every event: `specversion`, `id` (the event's request id), `source`, `type`,
 * `time` (requestedAt), `datacontenttype`, `correlationid`; when set: `subject` and `partitionkey` (the
 * ordering key), `causationid`, `requestedby`, `tenantid`, `traceparent`/`tracestate` (the distributed
 * tracing extension), `cqrsattributes` (JSON of `metadata.attributes`), `contentencoding` (`gzip`/`br`
 * when the data is compressed), `dataschema`.
 */
export const CLOUDEVENTS_SPEC_VERSION = '1.0';

/** CloudEvents context attributes keyed by attribute name (lower case, no binding prefix). */
export type CloudEventAttributes = Readonly<Record<string, string>>;

/** Turns an event's payload into the envelope's data bytes and back. */
export interface PayloadSerializer {
  /** The `datacontenttype` it writes and reads, e.g. `application/json`. */
  readonly contentType: string;
  serialize(event: AnyEvent): Uint8Array;
  /** Returns the payload as a plain value; the message definition validates it afterwards. */
  deserialize(type: string, data: Uint8Array): unknown;
  /**
   * Optional extra CloudEvents attributes for one event, called after `serialize` (e.g. `dataschema` naming
   * the protobuf message). It may override `datacontenttype` (a serializer that falls back to JSON for some
   * types); other attributes already set (`id`, `type`, ...) are kept. Names must be CloudEvents attribute
   * names (`[a-z0-9]{1,20}`).
   */
  attributes?(event: AnyEvent): Readonly<Record<string, string>> | undefined;
}

/** A malformed or unacceptable envelope: missing attributes, bad bytes, oversized, unknown encoding. */
export class EnvelopeError extends CqrsError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('CQRS_ENVELOPE', message, options);
    this.name = 'EnvelopeError';
  }
}

const utf8 = new TextEncoder();
const utf8Decoder = new TextDecoder('utf-8', { fatal: true });

/** The default serializer: UTF-8 JSON of the payload. */
export const jsonPayloadSerializer: PayloadSerializer = Object.freeze({
  contentType: 'application/json',
  serialize(event: AnyEvent): Uint8Array {
    let json: string | undefined;
    try {
      json = JSON.stringify(event.payload);
    } catch (cause) {
      throw new SerializationError(`${event.type} cannot be serialized to JSON`, { cause });
    }
    // `undefined` payloads are encoded as JSON null; functions and symbols are not payloads.
    if (json === undefined) {
      if (event.payload === undefined) return utf8.encode('null');
      throw new SerializationError(`${event.type} cannot be serialized to JSON`);
    }
    return utf8.encode(json);
  },
  deserialize(type: string, data: Uint8Array): unknown {
    try {
      return JSON.parse(utf8Decoder.decode(data));
    } catch (cause) {
      throw new EnvelopeError(`${type}: data is not valid UTF-8 JSON`, { cause });
    }
  },
});

const ATTRIBUTE_NAME_RE = /^[a-z0-9]{1,20}$/;

/**
 * The context attributes of an event (no data). `source` identifies the producing service.
 * @param key - the ordering key, written as `subject` and `partitionkey`
 * @param extra - attributes from {@link PayloadSerializer.attributes}: may override `datacontenttype`, never
 *   the other attributes already set. @throws SerializationError for an invalid attribute name or value
 */
export function eventAttributes(
  event: AnyEvent,
  source: string,
  contentType: string,
  key: string | null | undefined,
  extra?: Readonly<Record<string, string>>,
): Record<string, string> {
  const m = event.metadata;
  const a: Record<string, string> = {
    specversion: CLOUDEVENTS_SPEC_VERSION,
    id: m.requestId,
    source,
    type: event.type,
    time: m.requestedAt,
    datacontenttype: contentType,
    correlationid: m.correlationId,
  };
  if (typeof key === 'string') {
    a.subject = key;
    a.partitionkey = key;
  }
  if (m.causationId !== undefined) a.causationid = m.causationId;
  if (m.requestedBy !== undefined) a.requestedby = m.requestedBy;
  if (m.tenantId !== undefined) a.tenantid = m.tenantId;
  if (m.traceparent !== undefined) a.traceparent = m.traceparent;
  const attrs = m.attributes;
  if (attrs !== undefined) {
    for (const _ in attrs) {
      a.cqrsattributes = JSON.stringify(attrs);
      break;
    }
  }
  if (extra !== undefined) {
    for (const name in extra) {
      const v = extra[name];
      if (!ATTRIBUTE_NAME_RE.test(name) || typeof v !== 'string' || v.length === 0 || v.length > 2048) {
        throw new SerializationError(
          `${event.type}: serializer attribute ${JSON.stringify(name.slice(0, 40))} is not a valid CloudEvents attribute`,
        );
      }
      if (name === 'datacontenttype' || a[name] === undefined) a[name] = v;
    }
  }
  return a;
}

/** Compression of envelope data. */
export interface EnvelopeCompression {
  readonly algorithm: 'gzip' | 'br';
  /** Only data of at least this many bytes is compressed. @default 1024 */
  readonly thresholdBytes?: number;
}

/**
 * Compresses `data` when it reaches the threshold, marking `attributes.contentencoding`. Returns the bytes
 * to send (the input when left uncompressed).
 */
export function compressData(
  data: Uint8Array,
  attributes: Record<string, string>,
  compression: EnvelopeCompression | undefined,
): Uint8Array {
  if (compression === undefined || data.byteLength < (compression.thresholdBytes ?? 1024)) return data;
  attributes.contentencoding = compression.algorithm;
  return compression.algorithm === 'gzip' ? gzipSync(data) : brotliCompressSync(data);
}

/**
 * Undoes {@link compressData}. Output is capped at `maxBytes` (a compression bomb fails, it does not
 * exhaust memory). @throws EnvelopeError
 */
export function decompressData(
  data: Uint8Array,
  encoding: string | undefined,
  maxBytes: number,
  what = 'message',
): Uint8Array {
  if (encoding === undefined || encoding === 'identity') return data;
  try {
    if (encoding === 'gzip') return gunzipSync(data, { maxOutputLength: maxBytes });
    if (encoding === 'br') return brotliDecompressSync(data, { maxOutputLength: maxBytes });
  } catch (cause) {
    throw new EnvelopeError(`${what}: ${encoding} data is corrupt or larger than ${maxBytes} bytes`, {
      cause,
    });
  }
  throw new EnvelopeError(`${what}: unknown content encoding ${JSON.stringify(encoding.slice(0, 40))}`);
}

const UNSAFE_NAMES = new Set(['__proto__', 'constructor', 'prototype']);

function metadataFrom(a: CloudEventAttributes, what: string): MessageMetadata {
  const attributes: Record<string, string> = {};
  const raw = a.cqrsattributes;
  if (raw !== undefined) {
    try {
      const parsed: unknown = JSON.parse(raw);
      if (parsed !== null && typeof parsed === 'object' && !Array.isArray(parsed)) {
        for (const [k, v] of Object.entries(parsed)) {
          if (typeof v === 'string' && !UNSAFE_NAMES.has(k)) attributes[k] = v;
        }
      }
    } catch (cause) {
      throw new EnvelopeError(`${what}: cqrsattributes is not JSON`, { cause });
    }
  }
  return {
    requestId: a.id as string,
    correlationId: a.correlationid ?? (a.id as string),
    causationId: a.causationid,
    requestedBy: a.requestedby,
    requestedAt: a.time ?? new Date().toISOString(),
    tenantId: a.tenantid,
    traceparent: a.traceparent,
    attributes,
  };
}

/** Checks the required CloudEvents attributes. @throws EnvelopeError */
export function assertEnvelope(attributes: CloudEventAttributes): void {
  if (attributes === null || typeof attributes !== 'object')
    throw new EnvelopeError('envelope has no attributes');
  if (attributes.specversion !== CLOUDEVENTS_SPEC_VERSION) {
    throw new EnvelopeError(
      `envelope specversion must be ${CLOUDEVENTS_SPEC_VERSION}, got ${JSON.stringify(String(attributes.specversion).slice(0, 20))}`,
    );
  }
  for (const name of ['id', 'source', 'type'] as const) {
    const v = attributes[name];
    if (typeof v !== 'string' || v.length === 0 || v.length > 1024)
      throw new EnvelopeError(`envelope attribute ${name} is missing or invalid`);
  }
}

/**
 * Rebuilds the event object (`{ kind, type, payload, metadata }`) from an envelope, without validating the
 * payload against a definition (use {@link createEnvelopeDecoder} for that). @throws EnvelopeError
 */
export function eventFromEnvelope(
  attributes: CloudEventAttributes,
  data: Uint8Array,
  serializer: PayloadSerializer = jsonPayloadSerializer,
  maxBytes = DEFAULT_MAX_BYTES,
): AnyEvent {
  assertEnvelope(attributes);
  const type = attributes.type as string;
  const bytes = decompressData(data, attributes.contentencoding, maxBytes, type);
  const payload = serializer.deserialize(type, bytes);
  return { kind: 'event', type, payload, metadata: metadataFrom(attributes, type) } as AnyEvent;
}

const DEFAULT_MAX_BYTES = 1024 * 1024;

/** Options of {@link createEnvelopeDecoder}. */
export interface EnvelopeDecoderOptions {
  /** Definitions that validate payloads; a type not in it is an `UnknownMessageTypeError`. */
  readonly catalog?: MessageCatalog;
  /** Serializers by content type; JSON is always known. */
  readonly serializers?: readonly PayloadSerializer[];
  /** Largest accepted data, after decompression. @default 1048576 */
  readonly maxBytes?: number;
}

/** Decodes envelopes into validated events. */
export interface EnvelopeDecoder {
  /**
   * @throws EnvelopeError (malformed envelope or data), UnknownMessageTypeError, ValidationError; each is
   *   permanent: retrying the same bytes cannot succeed.
   */
  decode(attributes: CloudEventAttributes, data: Uint8Array): Promise<AnyEvent>;
}

/** Creates a decoder that checks the envelope, decompresses, deserializes and validates with the catalog. */
export function createEnvelopeDecoder(options: EnvelopeDecoderOptions = {}): EnvelopeDecoder {
  const maxBytes = options.maxBytes ?? DEFAULT_MAX_BYTES;
  const serializers = new Map<string, PayloadSerializer>([['application/json', jsonPayloadSerializer]]);
  for (const s of options.serializers ?? []) serializers.set(s.contentType, s);
  const catalog = options.catalog;
  return {
    async decode(attributes, data) {
      assertEnvelope(attributes);
      const type = attributes.type as string;
      if (!(data instanceof Uint8Array)) throw new EnvelopeError(`${type}: data is not bytes`);
      if (data.byteLength > maxBytes)
        throw new EnvelopeError(`${type}: data is ${data.byteLength} bytes, more than ${maxBytes}`);
      const contentType = (attributes.datacontenttype ?? 'application/json').split(';')[0]!.trim();
      const serializer = serializers.get(contentType);
      if (serializer === undefined)
        throw new EnvelopeError(`${type}: no serializer for content type ${JSON.stringify(contentType)}`);
      const event = eventFromEnvelope(attributes, data, serializer, maxBytes);
      if (catalog === undefined) return event;
      const definition = catalog.get(type);
      if (definition === undefined || definition.kind !== 'event') {
        throw new UnknownMessageTypeError(type);
      }
      return (await definition.decode(event)) as AnyEvent;
    },
  };
}

/**
 * Maps attributes to protocol binding headers: `datacontenttype` becomes `content-type`, every other
 * attribute is prefixed (e.g. `ce-` for HTTP and NATS, `ce_` for Kafka, `cloudEvents:` for AMQP).
 */
export function toBindingHeaders(attributes: CloudEventAttributes, prefix: string): Record<string, string> {
  const h: Record<string, string> = {};
  for (const name in attributes) {
    const v = attributes[name] as string;
    if (name === 'datacontenttype') h['content-type'] = v;
    else h[prefix + name] = v;
  }
  return h;
}

/** Reverse of {@link toBindingHeaders}; header names are matched case-insensitively, others are ignored. */
export function fromBindingHeaders(
  headers: Readonly<Record<string, string | undefined>>,
  prefix: string,
): Record<string, string> {
  const a: Record<string, string> = {};
  const p = prefix.toLowerCase();
  for (const name in headers) {
    const v = headers[name];
    if (typeof v !== 'string') continue;
    const lower = name.toLowerCase();
    if (lower === 'content-type') a.datacontenttype = v;
    else if (lower.startsWith(p)) {
      const attr = lower.slice(p.length);
      if (attr.length > 0 && !UNSAFE_NAMES.has(attr)) a[attr] = v;
    }
  }
  return a;
}
