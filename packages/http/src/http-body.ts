import { ConfigurationError, PayloadTooLargeError, SerializationError, ValidationError } from '@cqrs-ts/core';

/** The part of a Fetch `Request` the body reader uses. */
export interface FetchBody {
  readonly body: ReadableStream<Uint8Array> | null;
  arrayBuffer(): Promise<ArrayBuffer>;
}

/**
 * A request body as a framework hands it over: a Fetch `Request` (read whole in one call when its length is
 * declared, else as a stream), a Fetch `ReadableStream`, a Node stream (any async iterable of byte chunks), text
 * or bytes already read, or nothing.
 */
export type BodySource =
  | FetchBody
  | ReadableStream<Uint8Array>
  | AsyncIterable<Uint8Array | string>
  | Uint8Array
  | string
  | null
  | undefined;

/** Default largest request body, in bytes (1 MiB). */
export const DEFAULT_MAX_BODY_BYTES = 1_048_576;

const FORBIDDEN_KEYS = new Set(['__proto__', 'constructor', 'prototype']);

function tooLarge(what: string, bytes: number, max: number): PayloadTooLargeError {
  return new PayloadTooLargeError(what, bytes, max);
}

/**
 * Reads a body up to `maxBytes`, stopping as soon as it is exceeded (a stream is cancelled, not drained).
 * @throws PayloadTooLargeError (`CQRS_PAYLOAD_TOO_LARGE`) past `maxBytes`, or when `declaredLength` is already.
 */
export async function readBody(
  source: BodySource,
  maxBytes: number,
  declaredLength?: number,
): Promise<Uint8Array | string> {
  if (declaredLength !== undefined && declaredLength > maxBytes)
    throw tooLarge('request body', declaredLength, maxBytes);
  if (source === null || source === undefined) return '';
  if (typeof source === 'string') {
    if (source.length > maxBytes || Buffer.byteLength(source) > maxBytes)
      throw tooLarge('request body', Buffer.byteLength(source), maxBytes);
    return source;
  }
  if (source instanceof Uint8Array) {
    if (source.byteLength > maxBytes) throw tooLarge('request body', source.byteLength, maxBytes);
    return source;
  }
  if (isNodeReadable(source)) return readNode(source, maxBytes, declaredLength);
  if (isFetchBody(source)) {
    // A declared length within the limit bounds what the server's parser hands over: read it in one call
    // (runtimes read it without a stream, e.g. @hono/node-server); an unknown length is read as a stream.
    if (declaredLength === undefined) return readBody(source.body, maxBytes);
    const bytes = new Uint8Array(await source.arrayBuffer());
    if (bytes.byteLength > maxBytes) throw tooLarge('request body', bytes.byteLength, maxBytes);
    return bytes;
  }
  const chunks: Uint8Array[] = [];
  let total = 0;
  const add = (chunk: Uint8Array | string): void => {
    const bytes = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
    total += bytes.byteLength;
    if (total > maxBytes) throw tooLarge('request body', total, maxBytes);
    chunks.push(bytes);
  };
  if (typeof (source as ReadableStream).getReader === 'function') {
    const reader = (source as ReadableStream<Uint8Array>).getReader();
    try {
      while (true) {
        const { done, value } = await reader.read();
        if (done) break;
        add(value);
      }
    } catch (error) {
      reader.cancel().catch(() => {});
      throw error;
    }
  } else {
    for await (const chunk of source as AsyncIterable<Uint8Array | string>) add(chunk);
  }
  if (chunks.length === 1) return chunks[0]!;
  return Buffer.concat(chunks, total);
}

/** The part of a Node `Readable` (an `IncomingMessage`) the body reader uses. */
interface NodeReadable {
  readonly readableEnded: boolean;
  on(event: string, listener: (...args: never[]) => void): unknown;
  off(event: string, listener: (...args: never[]) => void): unknown;
  pause(): unknown;
}

function isFetchBody(source: object): source is FetchBody {
  return typeof (source as Partial<FetchBody>).arrayBuffer === 'function' && 'body' in source;
}

function isNodeReadable(source: object): source is NodeReadable {
  const s = source as Partial<NodeReadable>;
  return typeof s.on === 'function' && typeof s.pause === 'function' && typeof s.readableEnded === 'boolean';
}

/** Reads a Node stream with its events (cheaper than its async iterator); pauses it, unread, past the limit. */
function readNode(
  stream: NodeReadable,
  maxBytes: number,
  declared: number | undefined,
): Promise<Uint8Array | string> {
  if (stream.readableEnded) {
    if (declared !== undefined && declared > 0)
      throw new ConfigurationError(
        'the request body was already read (a body parser before the route?): mount no body parser on cqrs-ts routes',
      );
    return Promise.resolve('');
  }
  return new Promise((resolve, reject) => {
    const chunks: Uint8Array[] = [];
    let total = 0;
    const done = () => {
      stream.off('data', onData);
      stream.off('end', onEnd);
      stream.off('error', onError);
    };
    const onData = (chunk: Uint8Array) => {
      total += chunk.byteLength;
      if (total > maxBytes) {
        done();
        stream.pause();
        reject(tooLarge('request body', total, maxBytes));
      } else chunks.push(chunk);
    };
    const onEnd = () => {
      done();
      resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, total));
    };
    const onError = (error: Error) => {
      done();
      reject(error);
    };
    stream.on('data', onData);
    stream.on('end', onEnd);
    stream.on('error', onError);
  });
}

const decoder = new TextDecoder('utf-8', { fatal: true });

function refuseKey(key: string, value: unknown): void {
  if (key === '__proto__' || (key === 'constructor' && typeof value === 'object' && value !== null))
    throw new ValidationError('request body', [
      { path: [key], message: `the key ${key} is not accepted`, code: 'forbidden_key' },
    ]);
}

/**
 * Parses a JSON request body into a plain object payload. Refuses invalid UTF-8 or JSON, anything but an object
 * at the top, and the keys `__proto__` and `constructor` (with an object value) at any depth, escaped or not.
 * An empty body is `{}`.
 * @throws SerializationError (`CQRS_SERIALIZATION`) for text that is not JSON; ValidationError
 *   (`CQRS_VALIDATION`) for a body that is JSON but not an object, or holds a refused key.
 */
export function parseJsonBody(body: Uint8Array | string): Record<string, unknown> {
  let text: string;
  if (typeof body === 'string') text = body;
  else {
    try {
      text = decoder.decode(body);
    } catch (cause) {
      throw new SerializationError('the request body is not valid UTF-8', { cause });
    }
  }
  if (text.trim().length === 0) return {};
  let value: unknown;
  const suspicious = text.includes('__proto__') || text.includes('constructor') || text.includes('\\u');
  try {
    value = suspicious
      ? JSON.parse(text, (key, v) => {
          refuseKey(key, v);
          return v;
        })
      : JSON.parse(text);
  } catch (cause) {
    if (cause instanceof ValidationError) throw cause;
    throw new SerializationError('the request body is not valid JSON', { cause });
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw new ValidationError('request body', [
      { path: [], message: 'the request body must be a JSON object', code: 'invalid_type' },
    ]);
  return value as Record<string, unknown>;
}

/** True for a key that must never become a property of a payload built from strings (query, path). */
export function isForbiddenKey(key: string): boolean {
  return FORBIDDEN_KEYS.has(key);
}
