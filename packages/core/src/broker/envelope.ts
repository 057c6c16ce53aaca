import { createHash } from 'node:crypto';
import { brotliCompressSync, brotliDecompressSync, gunzipSync, gzipSync } from 'node:zlib';
import { isBaggage, isSafeId, isTraceparent } from '../context/headers.ts';
import { CqrsError, SerializationError, UnknownMessageTypeError } from '../errors/cqrs-error.ts';
import type { AnyEvent, MessageMetadata } from '../messages/message.ts';
import type { MessageCatalog } from '../messages/message-catalog.ts';
import { isUuid } from '../shared/uuid.ts';

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

/**
 * Why an envelope was rejected, a closed list ({@link EnvelopeError.problem}):
 * - `unsupported-mode`: a content mode cqrs-ts does not read (batched mode, or a structured format other than JSON)
 * - `unsupported-specversion`: `specversion` is not `1.0`
 * - `missing-attribute`: a required attribute (`specversion`, `id`, `source`, `type`) is absent or empty
 * - `invalid-attribute`: an attribute's value breaks the spec (a `source` that is not a URI-reference, a `time`
 *   that is not a timestamp, a structured event's attribute that is not a string, number or boolean, ...)
 * - `unsupported-content-type`: no serializer reads the `datacontenttype`
 * - `unsupported-encoding`: a content encoding other than `gzip`, `br` or `identity`
 * - `malformed-data`: the data (or a structured event's JSON document) does not parse
 * - `too-large`: the data is larger than the consumer accepts
 */
export const ENVELOPE_PROBLEMS = [
  'unsupported-mode',
  'unsupported-specversion',
  'missing-attribute',
  'invalid-attribute',
  'unsupported-content-type',
  'unsupported-encoding',
  'malformed-data',
  'too-large',
] as const;

/** One of {@link ENVELOPE_PROBLEMS}. */
export type EnvelopeProblem = (typeof ENVELOPE_PROBLEMS)[number];

/** A malformed or unacceptable envelope; `problem` names the cause from a closed list. */
export class EnvelopeError extends CqrsError {
  /** What was wrong, one of {@link ENVELOPE_PROBLEMS}. @default 'malformed-data' */
  readonly problem: EnvelopeProblem;
  constructor(message: string, options?: { cause?: unknown; problem?: EnvelopeProblem }) {
    super('CQRS_ENVELOPE', message, options?.cause !== undefined ? { cause: options.cause } : undefined);
    this.name = 'EnvelopeError';
    this.problem = options?.problem ?? 'malformed-data';
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
    // An event without data (CloudEvents allows it) has an undefined payload; a catalog's schema decides.
    if (data.byteLength === 0) return undefined;
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
  if (m.traceparent !== undefined) {
    a.traceparent = m.traceparent;
    if (m.tracestate !== undefined && m.tracestate !== '') a.tracestate = m.tracestate;
  }
  if (m.baggage !== undefined && m.baggage !== '') a.baggage = m.baggage;
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
    const tooLarge = (cause as { code?: unknown })?.code === 'ERR_BUFFER_TOO_LARGE';
    throw new EnvelopeError(
      `${what}: ${encoding} data is ${tooLarge ? `larger than ${maxBytes} bytes` : 'corrupt'}`,
      { cause, problem: tooLarge ? 'too-large' : 'malformed-data' },
    );
  }
  throw new EnvelopeError(`${what}: unknown content encoding ${JSON.stringify(encoding.slice(0, 40))}`, {
    problem: 'unsupported-encoding',
  });
}

const UNSAFE_NAMES = new Set(['__proto__', 'constructor', 'prototype']);
const HEX: string[] = [];
for (let i = 0; i < 256; i++) HEX.push(i.toString(16).padStart(2, '0'));

/**
 * The request id cqrs-ts uses for an incoming event: its CloudEvents `id` when that is a UUID, else a UUID
 * (version 8) derived from `source` and `id`, the same for every delivery of the event. The producer's own id
 * stays readable (see `incomingCloudEvent`) and is what the inbox deduplicates on.
 */
export function requestIdOf(source: string, id: string): string {
  if (isUuid(id)) return id;
  const h = createHash('sha256').update(source).update('\u0000').update(id).digest();
  h[6] = (h[6]! & 0x0f) | 0x80;
  h[8] = (h[8]! & 0x3f) | 0x80;
  let hex = '';
  for (let i = 0; i < 16; i++) {
    hex += HEX[h[i]!]!;
    if (i === 3 || i === 5 || i === 7 || i === 9) hex += '-';
  }
  return hex;
}

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
      throw new EnvelopeError(`${what}: cqrsattributes is not JSON`, { cause, problem: 'invalid-attribute' });
    }
  }
  const requestId = requestIdOf(a.source as string, a.id as string);
  const requestedAt = a.time === undefined ? new Date().toISOString() : rfc3339Time(a.time, what);
  // Correlation and causation ids are the producer's strings; ones cqrs-ts cannot carry on (control or non-ASCII
  // characters, over 256 chars) are left out rather than failing the event. An invalid trace context is ignored,
  // as W3C trace context asks.
  const traceparent = a.traceparent !== undefined && isTraceparent(a.traceparent) ? a.traceparent : undefined;
  // Built in place (no spreads), with the keys in the order they always had.
  const m = {
    requestId,
    correlationId: a.correlationid !== undefined && isSafeId(a.correlationid) ? a.correlationid : requestId,
    causationId: a.causationid !== undefined && isSafeId(a.causationid) ? a.causationid : undefined,
    requestedBy: a.requestedby,
    requestedAt,
    tenantId: a.tenantid,
    traceparent,
  } as { -readonly [K in keyof MessageMetadata]: MessageMetadata[K] };
  if (traceparent !== undefined && a.tracestate !== undefined && a.tracestate.length <= 512)
    m.tracestate = a.tracestate;
  // W3C baggage a producer carried; one cqrs-ts cannot carry on is left out rather than failing the event
  if (a.baggage !== undefined && isBaggage(a.baggage)) m.baggage = a.baggage;
  m.attributes = attributes;
  return m;
}

const DAYS_IN_MONTH = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
/** The decimal value of the digits of `s` from `at` to `end`, or -1 when one is not a digit. */
function digits(s: string, at: number, end: number): number {
  let n = 0;
  for (let i = at; i < end; i++) {
    const d = s.charCodeAt(i) - 48;
    if (d < 0 || d > 9) return -1;
    n = n * 10 + d;
  }
  return n;
}

/**
 * True when `time` is already what `new Date(Date.parse(time)).toISOString()` returns: `YYYY-MM-DDTHH:mm:ss.sssZ`
 * naming an existing instant (what cqrs-ts writes). Saves the parse and format of every event decoded.
 */
function isCanonicalUtc(time: string): boolean {
  if (
    time.length !== 24 ||
    time.charCodeAt(4) !== 45 || // -
    time.charCodeAt(7) !== 45 ||
    time.charCodeAt(10) !== 84 || // T
    time.charCodeAt(13) !== 58 || // :
    time.charCodeAt(16) !== 58 ||
    time.charCodeAt(19) !== 46 || // .
    time.charCodeAt(23) !== 90 // Z
  )
    return false;
  const year = digits(time, 0, 4);
  const month = digits(time, 5, 7);
  const day = digits(time, 8, 10);
  if (year < 0 || month < 1 || month > 12 || day < 1) return false;
  const leap = year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0);
  if (day > (month === 2 && leap ? 29 : DAYS_IN_MONTH[month - 1]!)) return false;
  const hour = digits(time, 11, 13);
  const minute = digits(time, 14, 16);
  const second = digits(time, 17, 19);
  return (
    hour >= 0 &&
    hour <= 23 &&
    minute >= 0 &&
    minute <= 59 &&
    second >= 0 &&
    second <= 59 &&
    digits(time, 20, 23) >= 0
  );
}

/** `time` as `toISOString()` writes it. @throws EnvelopeError when it is not a timestamp */
function rfc3339Time(time: string, what: string): string {
  if (isCanonicalUtc(time)) return time;
  const t = Date.parse(time);
  if (Number.isNaN(t)) {
    throw new EnvelopeError(
      `${what}: time ${JSON.stringify(time.slice(0, 40))} is not an RFC 3339 timestamp`,
      {
        problem: 'invalid-attribute',
      },
    );
  }
  return new Date(t).toISOString();
}

// RFC 3986 URI-reference characters; `%` must start a percent-encoded octet.
const URI_REFERENCE_RE = /^(?:[A-Za-z0-9\-._~:/?#[\]@!$&'()*+,;=]|%[0-9A-Fa-f]{2})+$/;

/** True when `value` is a non-empty RFC 3986 URI-reference, as CloudEvents requires of `source`. */
export function isUriReference(value: unknown): value is string {
  return (
    typeof value === 'string' && value.length > 0 && value.length <= 4096 && URI_REFERENCE_RE.test(value)
  );
}

/** Checks the required CloudEvents attributes. @throws EnvelopeError */
export function assertEnvelope(attributes: CloudEventAttributes): void {
  if (attributes === null || typeof attributes !== 'object')
    throw new EnvelopeError('envelope has no attributes', { problem: 'missing-attribute' });
  const version = attributes.specversion;
  if (version === undefined || version === '') {
    throw new EnvelopeError('not a CloudEvent: specversion is missing', { problem: 'missing-attribute' });
  }
  if (version !== CLOUDEVENTS_SPEC_VERSION) {
    throw new EnvelopeError(
      `envelope specversion must be ${CLOUDEVENTS_SPEC_VERSION}, got ${JSON.stringify(String(version).slice(0, 20))}`,
      { problem: 'unsupported-specversion' },
    );
  }
  for (const name of REQUIRED_ATTRIBUTES) {
    const v = attributes[name];
    if (typeof v !== 'string' || v.length === 0)
      throw new EnvelopeError(`envelope attribute ${name} is missing`, { problem: 'missing-attribute' });
    if (v.length > 1024)
      throw new EnvelopeError(`envelope attribute ${name} is longer than 1024 chars`, {
        problem: 'invalid-attribute',
      });
  }
  const source = attributes.source as string;
  // One producer's events share their source: the last one that passed needs no second look.
  if (source !== lastSource && !URI_REFERENCE_RE.test(source)) {
    throw new EnvelopeError(
      `envelope source ${JSON.stringify((attributes.source as string).slice(0, 80))} is not a URI-reference`,
      { problem: 'invalid-attribute' },
    );
  }
  lastSource = source;
}

const REQUIRED_ATTRIBUTES = ['id', 'source', 'type'] as const;
let lastSource = '';

/** The media type of structured content mode in JSON (the whole event as one JSON document). */
export const CLOUDEVENTS_JSON_CONTENT_TYPE = 'application/cloudevents+json';
const STRUCTURED_ATTRIBUTE_RE = /^[a-z0-9]{1,64}$/;
const MAX_STRUCTURED_ATTRIBUTES = 100;

function isJsonContentType(contentType: string | undefined): boolean {
  if (contentType === undefined) return true;
  const media = contentType.split(';')[0]!.trim().toLowerCase();
  return media === 'application/json' || media === 'text/json' || media.endsWith('+json');
}

/**
 * Turns a message in either content mode into binary-mode attributes and data. A message whose content type is
 * `application/cloudevents+json` is a structured event: its JSON document holds the attributes and `data` (a JSON
 * value, or text for other content types) or `data_base64`. Binary-mode messages are returned unchanged.
 * @throws EnvelopeError `unsupported-mode` for batched mode and other structured formats, `malformed-data`,
 *   `invalid-attribute`, `too-large`
 */
export function openEnvelope(
  attributes: CloudEventAttributes,
  data: Uint8Array,
  maxBytes = DEFAULT_MAX_BYTES,
): { readonly attributes: CloudEventAttributes; readonly data: Uint8Array } {
  const contentType = attributes?.datacontenttype;
  if (
    contentType === undefined ||
    contentType.length < 23 ||
    contentType.slice(0, 23).toLowerCase() !== 'application/cloudevents'
  ) {
    return { attributes, data };
  }
  const media = contentType.split(';')[0]!.trim().toLowerCase();
  if (media !== CLOUDEVENTS_JSON_CONTENT_TYPE) {
    throw new EnvelopeError(
      `unsupported content mode ${JSON.stringify(media.slice(0, 60))}: binary mode and structured mode in JSON (${CLOUDEVENTS_JSON_CONTENT_TYPE}) are accepted`,
      { problem: 'unsupported-mode' },
    );
  }
  if (!(data instanceof Uint8Array)) throw new EnvelopeError('structured event is not bytes');
  if (data.byteLength > maxBytes) {
    throw new EnvelopeError(`structured event is ${data.byteLength} bytes, more than ${maxBytes}`, {
      problem: 'too-large',
    });
  }
  let doc: unknown;
  try {
    doc = JSON.parse(utf8Decoder.decode(data));
  } catch (cause) {
    throw new EnvelopeError('structured event is not valid UTF-8 JSON', { cause });
  }
  if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) {
    throw new EnvelopeError('structured event is not a JSON object');
  }
  const event = doc as Record<string, unknown>;
  const out: Record<string, string> = {};
  let count = 0;
  for (const name in event) {
    if (name === 'data' || name === 'data_base64') continue;
    const v = event[name];
    if (v === null || v === undefined) continue;
    if (!STRUCTURED_ATTRIBUTE_RE.test(name) || ++count > MAX_STRUCTURED_ATTRIBUTES) {
      throw new EnvelopeError(
        `structured event attribute ${JSON.stringify(name.slice(0, 40))} is not valid`,
        {
          problem: 'invalid-attribute',
        },
      );
    }
    if (typeof v === 'string') out[name] = v;
    else if ((typeof v === 'number' && Number.isInteger(v)) || typeof v === 'boolean') out[name] = String(v);
    else {
      throw new EnvelopeError(`structured event attribute ${name} is not a string, integer or boolean`, {
        problem: 'invalid-attribute',
      });
    }
  }
  let bytes: Uint8Array;
  if (event.data_base64 !== undefined && event.data_base64 !== null) {
    if (event.data !== undefined)
      throw new EnvelopeError('structured event has both data and data_base64', {
        problem: 'invalid-attribute',
      });
    const b64 = event.data_base64;
    if (typeof b64 !== 'string' || !/^[A-Za-z0-9+/\s]*={0,2}\s*$/.test(b64)) {
      throw new EnvelopeError('structured event data_base64 is not base64', { problem: 'malformed-data' });
    }
    bytes = Buffer.from(b64, 'base64');
  } else if (event.data === undefined) {
    bytes = new Uint8Array(0);
  } else if (isJsonContentType(out.datacontenttype)) {
    bytes = utf8.encode(JSON.stringify(event.data));
    out.datacontenttype ??= 'application/json';
  } else if (typeof event.data === 'string') {
    bytes = utf8.encode(event.data);
  } else {
    throw new EnvelopeError(`structured event data is not text for content type ${out.datacontenttype}`, {
      problem: 'malformed-data',
    });
  }
  return { attributes: out, data: bytes };
}

/**
 * Rebuilds the event object (`{ kind, type, payload, metadata }`) from a binary-mode envelope, without validating
 * the payload against a definition (use {@link createEnvelopeDecoder} for that). @throws EnvelopeError
 */
export function eventFromEnvelope(
  attributes: CloudEventAttributes,
  data: Uint8Array,
  serializer: PayloadSerializer = jsonPayloadSerializer,
  maxBytes = DEFAULT_MAX_BYTES,
): AnyEvent {
  assertEnvelope(attributes);
  return checkedEventFromEnvelope(attributes, data, serializer, maxBytes);
}

/** {@link eventFromEnvelope} of attributes that passed {@link assertEnvelope}. */
function checkedEventFromEnvelope(
  attributes: CloudEventAttributes,
  data: Uint8Array,
  serializer: PayloadSerializer,
  maxBytes: number,
): AnyEvent {
  const type = attributes.type as string;
  const bytes = decompressData(data, encodingOf(attributes), maxBytes, type);
  const payload = serializer.deserialize(type, bytes);
  return { kind: 'event', type, payload, metadata: metadataFrom(attributes, type) } as AnyEvent;
}

/** The content encoding of the data: the `contentencoding` extension (or the AMQP `content-encoding`). */
function encodingOf(attributes: CloudEventAttributes): string | undefined {
  const e = attributes.contentencoding;
  return e === undefined ? undefined : e.trim().toLowerCase();
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

/** An incoming message decoded: the event and the CloudEvents attributes it came with (binary mode form). */
export interface DecodedMessage {
  readonly event: AnyEvent;
  readonly attributes: CloudEventAttributes;
}

/** Decodes envelopes into validated events. */
export interface EnvelopeDecoder {
  /**
   * Decodes a message in binary or structured (JSON) content mode.
   * @throws EnvelopeError (malformed envelope or data), UnknownMessageTypeError, ValidationError; each is
   *   permanent: retrying the same bytes cannot succeed.
   */
  decode(attributes: CloudEventAttributes, data: Uint8Array): Promise<AnyEvent>;
  /** {@link decode}, also returning the attributes (read from the JSON document in structured mode). */
  decodeMessage(attributes: CloudEventAttributes, data: Uint8Array): Promise<DecodedMessage>;
}

/** Creates a decoder that checks the envelope, decompresses, deserializes and validates with the catalog. */
export function createEnvelopeDecoder(options: EnvelopeDecoderOptions = {}): EnvelopeDecoder {
  const open = createEnvelopeOpener(options);
  const catalog = options.catalog;
  const validate = async (event: AnyEvent): Promise<AnyEvent> => {
    const definition = catalog!.get(event.type);
    if (definition === undefined || definition.kind !== 'event') {
      throw new UnknownMessageTypeError(event.type);
    }
    return (await definition.decode(event)) as AnyEvent;
  };
  return {
    async decodeMessage(attributes, data) {
      const opened = open(attributes, data);
      return catalog === undefined
        ? opened
        : { event: await validate(opened.event), attributes: opened.attributes };
    },
    async decode(attributes, data) {
      const event = open(attributes, data).event;
      return catalog === undefined ? event : validate(event);
    },
  };
}

/**
 * The synchronous part of {@link createEnvelopeDecoder} (`catalog` aside): checks the envelope, decompresses and
 * deserializes. @throws EnvelopeError @internal
 */
export function createEnvelopeOpener(
  options: Omit<EnvelopeDecoderOptions, 'catalog'> = {},
): (attributes: CloudEventAttributes, data: Uint8Array) => DecodedMessage {
  const maxBytes = options.maxBytes ?? DEFAULT_MAX_BYTES;
  const serializers = new Map<string, PayloadSerializer>([['application/json', jsonPayloadSerializer]]);
  for (const s of options.serializers ?? []) serializers.set(s.contentType, s);
  const json = serializers.get('application/json')!;
  return function open(rawAttributes: CloudEventAttributes, rawData: Uint8Array): DecodedMessage {
    if (!(rawData instanceof Uint8Array)) throw new EnvelopeError('data is not bytes');
    let attributes = rawAttributes;
    let data = rawData;
    const rawType = rawAttributes?.datacontenttype;
    // Binary mode with JSON data, what cqrs-ts writes: no structured event to open, no content type to parse.
    const plainJson = rawType === 'application/json' || (rawType === undefined && rawAttributes != null);
    if (!plainJson) ({ attributes, data } = openEnvelope(rawAttributes, rawData, maxBytes));
    assertEnvelope(attributes);
    const type = attributes.type as string;
    if (data.byteLength > maxBytes)
      throw new EnvelopeError(`${type}: data is ${data.byteLength} bytes, more than ${maxBytes}`, {
        problem: 'too-large',
      });
    let serializer = json;
    if (!plainJson) {
      const contentType = (attributes.datacontenttype ?? 'application/json').split(';')[0]!.trim();
      const found =
        serializers.get(contentType) ??
        serializers.get(contentType.toLowerCase()) ??
        (isJsonContentType(contentType) ? jsonPayloadSerializer : undefined);
      if (found === undefined)
        throw new EnvelopeError(
          `${type}: no serializer for content type ${JSON.stringify(contentType.slice(0, 80))}`,
          {
            problem: 'unsupported-content-type',
          },
        );
      serializer = found;
    }
    return { event: checkedEventFromEnvelope(attributes, data, serializer, maxBytes), attributes };
  };
}

const NEEDS_PERCENT_RE = /[^\x21\x23-\x24\x26-\x7e]/;
const PERCENT_RE = /%[0-9A-Fa-f]{2}/;

/**
 * Percent-encodes a header value as the CloudEvents HTTP and NATS bindings ask: space, `"`, `%` and every
 * character outside printable ASCII become `%XX` of their UTF-8 bytes. Values without such characters are
 * returned as they are (no copy).
 */
export function percentEncodeHeader(value: string): string {
  if (!NEEDS_PERCENT_RE.test(value)) return value;
  let out = '';
  for (const ch of value) {
    const c = ch.codePointAt(0)!;
    if (c >= 0x21 && c <= 0x7e && c !== 0x22 && c !== 0x25) out += ch;
    else for (const b of utf8.encode(ch)) out += `%${HEX[b]!.toUpperCase()}`;
  }
  return out;
}

/** Reverse of {@link percentEncodeHeader}; a value whose `%` sequences are not valid UTF-8 is kept as it is. */
export function percentDecodeHeader(value: string): string {
  if (!PERCENT_RE.test(value)) return value;
  try {
    return decodeURIComponent(value.replace(/%(?![0-9A-Fa-f]{2})/g, '%25'));
  } catch {
    return value;
  }
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
