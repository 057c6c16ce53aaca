import { brotliCompressSync, brotliDecompressSync, gunzipSync, gzipSync } from 'node:zlib';
import type { PayloadSerializer } from '../broker/envelope.ts';
import { eventAttributes, isUriReference, jsonPayloadSerializer } from '../broker/envelope.ts';
import type { OutboxMessage } from '../broker/message-publisher.ts';
import { ConfigurationError, SerializationError } from '../errors/cqrs-error.ts';
import { PayloadTooLargeError } from '../errors/storage-error.ts';
import type { AnyEvent } from '../messages/message.ts';
import { isUuid } from '../shared/uuid.ts';
import { OutboxError } from './outbox-errors.ts';
import type { ContentEncoding, OutboxRecord, OutboxRecordInput } from './outbox-record.ts';

/** Payload compression of outbox records. */
export interface OutboxCompressionOptions {
  readonly algorithm: 'gzip' | 'br';
  /** Only payloads of at least this many JSON bytes are compressed. @default 1024 */
  readonly thresholdBytes?: number;
}

/** Serialization options shared by every outbox store. */
export interface OutboxEncoderOptions {
  /** Compress big payloads with node:zlib; the encoding is recorded per row. Default: no compression. */
  readonly compression?: OutboxCompressionOptions;
  /** Largest accepted serialized payload of one event, before compression. @default 1048576 (1 MiB) */
  readonly maxPayloadBytes?: number;
  /** CloudEvents `source` of the events (the producing service), a URI-reference. @default 'cqrs-ts' */
  readonly source?: string;
  /** Serializes payloads. @default JSON */
  readonly serializer?: PayloadSerializer;
}

/** Turns events into rows; used by stores before they touch the database. */
export interface OutboxEncoder {
  /** @throws SerializationError, PayloadTooLargeError, OutboxError; never partially. */
  encode(events: readonly AnyEvent[], now: number): OutboxRecordInput[];
}

const DEFAULT_MAX_PAYLOAD = 1024 * 1024;
/** @internal The headers of a record that has none (one frozen object, shared). */
export const EMPTY_HEADERS: Readonly<Record<string, string>> = Object.freeze({});

/** Creates the encoder a store uses in `append`. Fails fast on bad options. */
export function createOutboxEncoder(options: OutboxEncoderOptions = {}): OutboxEncoder {
  const maxBytes = options.maxPayloadBytes ?? DEFAULT_MAX_PAYLOAD;
  if (!Number.isInteger(maxBytes) || maxBytes <= 0) {
    throw new ConfigurationError(`outbox: maxPayloadBytes must be a positive integer, got ${maxBytes}`);
  }
  const compression = options.compression;
  const threshold = compression?.thresholdBytes ?? 1024;
  if (compression && compression.algorithm !== 'gzip' && compression.algorithm !== 'br') {
    throw new ConfigurationError(`outbox: unknown compression ${String(compression.algorithm)}`);
  }
  const source = options.source ?? 'cqrs-ts';
  if (typeof source !== 'string' || source.length > 256 || !isUriReference(source)) {
    throw new ConfigurationError(
      `outbox: source must be a URI-reference of 1..256 chars (CloudEvents), e.g. 'https://shop.example/orders' or 'urn:shop:orders', got ${JSON.stringify(String(source).slice(0, 80))}`,
    );
  }
  const serializer = options.serializer ?? jsonPayloadSerializer;
  return {
    encode(events, now) {
      if (!Array.isArray(events)) throw new OutboxError('outbox append expects an array of events');
      const out: OutboxRecordInput[] = new Array(events.length);
      for (let i = 0; i < events.length; i++) {
        const event = events[i] as AnyEvent & { topic?: unknown; key?: unknown };
        if (
          event === null ||
          typeof event !== 'object' ||
          event.kind !== 'event' ||
          typeof event.type !== 'string'
        ) {
          throw new OutboxError(`outbox append: item ${i} is not an event`);
        }
        const id = event.metadata?.requestId;
        if (typeof id !== 'string' || !isUuid(id)) {
          throw new OutboxError(`outbox append: ${event.type} has no valid metadata.requestId`);
        }
        let payload: Uint8Array = serializer.serialize(event);
        if (payload.byteLength > maxBytes)
          throw new PayloadTooLargeError(event.type, payload.byteLength, maxBytes);
        let contentEncoding: ContentEncoding = 'identity';
        if (compression && payload.byteLength >= threshold) {
          payload = compression.algorithm === 'gzip' ? gzipSync(payload) : brotliCompressSync(payload);
          contentEncoding = compression.algorithm;
        }
        const key = typeof event.key === 'string' ? event.key : null;
        out[i] = {
          id,
          type: event.type,
          topic: typeof event.topic === 'string' ? event.topic : event.type,
          key,
          payload,
          headers: eventAttributes(
            event,
            source,
            serializer.contentType,
            key,
            serializer.attributes?.(event),
          ),
          contentEncoding,
          createdAt: now,
        };
      }
      return out;
    },
  };
}

/**
 * Turns freshly encoded records into what a publisher receives, for publishing events directly (without an
 * outbox table). Use an encoder without `compression`: bodies are passed as they are.
 */
export function toOutboxMessages(records: readonly OutboxRecordInput[]): OutboxMessage[] {
  const out: OutboxMessage[] = new Array(records.length);
  for (let i = 0; i < records.length; i++) {
    const r = records[i]!;
    out[i] = {
      id: r.id,
      type: r.type,
      topic: r.topic,
      key: r.key,
      headers: r.headers,
      body: r.payload,
      attempts: 0,
    };
  }
  return out;
}

/** Largest payload a stored record may decompress to; a corrupt or hostile row cannot exhaust memory. */
const MAX_DECOMPRESSED = 128 * 1024 * 1024;

/**
 * Why `value` is not valid outbox headers (a plain object of string values), or `undefined` when it is.
 * Stores use it when they read rows; {@link decodeOutboxRecord} checks it again for every record.
 */
export function outboxHeadersProblem(value: unknown): string | undefined {
  if (value === null || typeof value !== 'object' || Array.isArray(value) || value instanceof Uint8Array) {
    return `headers are not a JSON object (${value === null ? 'null' : Array.isArray(value) ? 'array' : typeof value})`;
  }
  for (const name in value) {
    const v = (value as Record<string, unknown>)[name];
    if (typeof v !== 'string') return `header ${JSON.stringify(name.slice(0, 100))} is not a string`;
  }
  return undefined;
}

/**
 * Decodes a stored record to what a publisher receives (decompressing when needed).
 * @throws SerializationError (`CQRS_SERIALIZATION`) for a record that cannot be read: marked `unreadable` by its
 *   store, headers that are not an object of strings, a payload that is not bytes, an unknown content encoding,
 *   or bytes that do not decompress.
 */
export function decodeOutboxRecord(record: OutboxRecord): OutboxMessage {
  const body = outboxRecordBody(record);
  return {
    id: record.id,
    type: record.type,
    topic: record.topic,
    key: record.key,
    headers: record.headers ?? EMPTY_HEADERS,
    body,
    attempts: record.attempts,
  };
}

/**
 * The checks of {@link decodeOutboxRecord}, returning the record's body (decompressed) without building a
 * message. @throws SerializationError @internal
 */
export function outboxRecordBody(
  record: Pick<OutboxRecord, 'id' | 'headers' | 'payload' | 'contentEncoding' | 'unreadable'>,
): Uint8Array {
  const id = record.id;
  if (record.unreadable !== undefined) {
    throw new SerializationError(`outbox record ${id}: ${record.unreadable}`);
  }
  const problem = outboxHeadersProblem(record.headers ?? EMPTY_HEADERS);
  if (problem !== undefined) throw new SerializationError(`outbox record ${id}: ${problem}`);
  const body = record.payload;
  if (!(body instanceof Uint8Array))
    throw new SerializationError(`outbox record ${id}: payload is not bytes`);
  const encoding = record.contentEncoding;
  if (encoding === 'identity') return body;
  if (encoding !== 'gzip' && encoding !== 'br') {
    throw new SerializationError(
      `outbox record ${id}: unknown content encoding ${JSON.stringify(String(encoding).slice(0, 40))}`,
    );
  }
  try {
    return encoding === 'gzip'
      ? gunzipSync(body, { maxOutputLength: MAX_DECOMPRESSED })
      : brotliDecompressSync(body, { maxOutputLength: MAX_DECOMPRESSED });
  } catch (cause) {
    throw new SerializationError(
      `outbox record ${id}: payload does not decode as ${encoding}: ${cause instanceof Error ? cause.message : String(cause)}`,
      { cause },
    );
  }
}
