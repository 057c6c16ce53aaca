import { compressData, type EnvelopeCompression } from '@cqrs-ts/core/spi';
import type { RedisArgument } from './redis-options.ts';

const decoder = new TextDecoder();

/** A reply element as text. @internal */
export function text(value: unknown): string {
  if (typeof value === 'string') return value;
  if (value instanceof Uint8Array) return decoder.decode(value);
  return String(value);
}

/** Name of the entry field holding the CloudEvents data. */
export const DATA_FIELD = 'data';
/** Default prefix of the entry fields holding CloudEvents attributes (`ce_id`, `ce_type`, ...). */
export const DEFAULT_FIELD_PREFIX = 'ce_';

/** Attribute names accepted on the wire: CloudEvents names are lower-case letters and digits. */
const ATTRIBUTE_NAME = /^[a-z0-9]{1,64}$/;
const MAX_ATTRIBUTES = 100;
const MAX_ATTRIBUTE_BYTES = 8192;
const UNSAFE = new Set(['__proto__', 'constructor', 'prototype']);

/** Bytes as a Buffer without copying (ioredis would stringify a plain Uint8Array). */
export function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/**
 * Appends the entry fields of one message to `out`: each attribute as `<prefix><name>` (`datacontenttype` as
 * `content-type`, as in every CloudEvents binding), then `data`. Returns the number of arguments appended, or a
 * problem description for attributes that cannot be written. `fieldNames` caches validated names (per prefix).
 */
export function appendFields(
  out: RedisArgument[],
  headers: Readonly<Record<string, string>>,
  body: Uint8Array,
  fieldNames: Map<string, string>,
  compression: EnvelopeCompression | undefined,
  prefix: string,
): number | string {
  let attributes = headers;
  let data = body;
  if (!(body instanceof Uint8Array)) return 'body is not bytes';
  if (compression !== undefined && body.byteLength >= (compression.thresholdBytes ?? 1024)) {
    const copy = { ...headers };
    data = compressData(body, copy, compression);
    attributes = copy;
  }
  const start = out.length;
  let n = 0;
  for (const name in attributes) {
    const value = attributes[name];
    if (typeof value !== 'string') return `attribute ${name} is not a string`;
    let field = fieldNames.get(name);
    if (field === undefined) {
      if (!ATTRIBUTE_NAME.test(name)) return `invalid attribute name ${JSON.stringify(name.slice(0, 70))}`;
      field = name === 'datacontenttype' ? 'content-type' : prefix + name;
      if (fieldNames.size < 1000) fieldNames.set(name, field);
    }
    if (++n > MAX_ATTRIBUTES) return `more than ${MAX_ATTRIBUTES} attributes`;
    out.push(field, value);
  }
  out.push(DATA_FIELD, asBuffer(data));
  return out.length - start;
}

/** An entry decoded to CloudEvents attributes and data, or why it cannot be. */
export type DecodedEntry =
  | { readonly ok: true; readonly attributes: Record<string, string>; readonly data: Uint8Array }
  | { readonly ok: false; readonly reason: string };

/**
 * Reads the fields of a stream entry (`[name, value, name, value, ...]` as Buffers). Fields other than the
 * attributes and `data` are ignored; oversized or too many attributes make the entry malformed.
 */
export function decodeFields(fields: readonly unknown[], prefix: string): DecodedEntry {
  const attributes: Record<string, string> = {};
  let data: Uint8Array | undefined;
  let count = 0;
  for (let i = 0; i + 1 < fields.length; i += 2) {
    const rawName = fields[i];
    const rawValue = fields[i + 1];
    const name = Buffer.isBuffer(rawName) ? rawName.toString('latin1') : String(rawName);
    if (name === DATA_FIELD) {
      data = Buffer.isBuffer(rawValue) ? rawValue : Buffer.from(String(rawValue));
      continue;
    }
    let attribute: string;
    if (name.toLowerCase() === 'content-type') attribute = 'datacontenttype';
    else if (name.startsWith(prefix) && name.length > prefix.length) {
      attribute = name.slice(prefix.length).toLowerCase();
      if (UNSAFE.has(attribute)) continue;
    } else continue;
    if (++count > MAX_ATTRIBUTES) return { ok: false, reason: `more than ${MAX_ATTRIBUTES} attributes` };
    const value = Buffer.isBuffer(rawValue) ? rawValue : Buffer.from(String(rawValue));
    if (value.byteLength > MAX_ATTRIBUTE_BYTES) {
      return { ok: false, reason: `attribute ${attribute} is larger than ${MAX_ATTRIBUTE_BYTES} bytes` };
    }
    attributes[attribute] = value.toString('utf8');
  }
  if (fields.length % 2 !== 0) return { ok: false, reason: 'odd number of fields' };
  if (data === undefined) return { ok: false, reason: `no ${DATA_FIELD} field` };
  return { ok: true, attributes, data };
}
