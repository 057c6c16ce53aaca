import type { CloudEventAttributes, OutboxMessage } from '@cqrs-ts/core/spi';
import { toBindingHeaders } from '@cqrs-ts/core/spi';
import { murmur2 } from '@platformatic/kafka';
import type { KafkaPartitioner, KafkaRecordToProduce } from './kafka-options.ts';

/** Prefix of CloudEvents attributes in Kafka headers (CloudEvents Kafka protocol binding, binary mode). */
export const KAFKA_HEADER_PREFIX = 'ce_';

const UNSAFE = new Set(['__proto__', 'constructor', 'prototype']);
const headerNames = new Map<string, Buffer>();

/** Header names repeat on every record: their bytes are cached (bounded: CloudEvents names only). */
function nameBytes(name: string): Buffer {
  let b = headerNames.get(name);
  if (b === undefined) {
    b = Buffer.from(name, 'utf8');
    if (headerNames.size < 256) headerNames.set(name, b);
  }
  return b;
}

/**
 * CloudEvents attributes as Kafka headers: `ce_<name>` for each attribute, `content-type` for
 * `datacontenttype` (the Kafka binding's mapping), as the Buffers the producer writes.
 */
export function toKafkaHeaders(attributes: CloudEventAttributes): Map<Buffer, Buffer> {
  const h = new Map<Buffer, Buffer>();
  const mapped = toBindingHeaders(attributes, KAFKA_HEADER_PREFIX);
  for (const name in mapped) h.set(nameBytes(name), Buffer.from(mapped[name] as string, 'utf8'));
  return h;
}

/**
 * Reverse of {@link toKafkaHeaders} on a consumed record's headers: `ce_*` and `content-type` (names matched
 * case-insensitively), other headers ignored; `null` values and unsafe names are skipped.
 */
export function fromKafkaHeaders(
  headers: Iterable<readonly [Buffer | string | null | undefined, Buffer | string | null | undefined]>,
): Record<string, string> {
  const a: Record<string, string> = {};
  for (const [k, v] of headers) {
    if (k == null || v == null) continue;
    const name = (typeof k === 'string' ? k : k.toString('utf8')).toLowerCase();
    const value = typeof v === 'string' ? v : v.toString('utf8');
    if (name === 'content-type') a.datacontenttype = value;
    else if (name.startsWith(KAFKA_HEADER_PREFIX)) {
      const attr = name.slice(KAFKA_HEADER_PREFIX.length);
      if (attr.length > 0 && !UNSAFE.has(attr)) a[attr] = value;
    }
  }
  return a;
}

/**
 * Kafka's default partitioner (the Java client's): `toPositive(murmur2(key)) % partitions`, so records with
 * the same key land on the same partition as when produced by Java, librdkafka (`murmur2_random`) or
 * KafkaJS (`JavaCompatiblePartitioner`) producers.
 */
export const defaultKafkaPartitioner: KafkaPartitioner = (key, partitions) =>
  (murmur2(key) & 0x7fffffff) % partitions;

/** View of bytes as a Buffer without copying. */
export function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/**
 * Builds the record of one outbox message: key = the ordering key (so a key's records share a partition and
 * keep their order), value = the CloudEvents data, headers = the attributes (`ce_*`, `content-type`).
 * @param partition - chosen by the caller (see {@link defaultKafkaPartitioner})
 */
export function buildKafkaRecord(
  message: OutboxMessage,
  topic: string,
  partition: number,
): KafkaRecordToProduce {
  const record: KafkaRecordToProduce = {
    topic,
    partition,
    value: asBuffer(message.body),
    headers: toKafkaHeaders(message.headers),
  };
  if (message.key !== null) record.key = Buffer.from(message.key, 'utf8');
  return record;
}

/** The record being dead-lettered, as consumed. */
export interface ConsumedKafkaRecord {
  readonly topic: string;
  readonly partition: number;
  readonly offset: bigint;
  readonly key?: Buffer | null | undefined;
  readonly value?: Buffer | null | undefined;
  readonly headerEntries: ReadonlyArray<readonly [Buffer | null | undefined, Buffer | null | undefined]>;
}

/** Attributes added to a dead-lettered record, besides its original headers. */
export const DEAD_LETTER_ATTRIBUTES = [
  'deadletterreason',
  'deadlettersource',
  'deadletterattempts',
  'deadletterpartition',
  'deadletteroffset',
] as const;

const DEAD_LETTER_HEADER_NAMES = new Set(DEAD_LETTER_ATTRIBUTES.map((a) => KAFKA_HEADER_PREFIX + a));

/**
 * Builds the dead-letter record of a consumed record: the same key, value and headers (byte for byte, even
 * when they are not a valid envelope), plus `ce_deadletterreason`, `ce_deadlettersource` (the source topic),
 * `ce_deadletterattempts`, `ce_deadletterpartition` and `ce_deadletteroffset` (earlier dead-letter headers
 * are replaced). The partition is left to the producer's key hashing on the dead-letter topic.
 */
export function buildDeadLetterRecord(
  record: ConsumedKafkaRecord,
  options: { readonly topic: string; readonly reason: string; readonly attempts: number },
): KafkaRecordToProduce {
  const headers = new Map<Buffer, Buffer>();
  for (const [k, v] of record.headerEntries) {
    if (k == null) continue;
    if (DEAD_LETTER_HEADER_NAMES.has(k.toString('utf8').toLowerCase())) continue;
    headers.set(k, v ?? Buffer.alloc(0));
  }
  const add = (name: (typeof DEAD_LETTER_ATTRIBUTES)[number], value: string) =>
    headers.set(nameBytes(KAFKA_HEADER_PREFIX + name), Buffer.from(value, 'utf8'));
  add('deadletterreason', options.reason.slice(0, 4000));
  add('deadlettersource', record.topic);
  add('deadletterattempts', String(options.attempts));
  add('deadletterpartition', String(record.partition));
  add('deadletteroffset', record.offset.toString());
  const out: KafkaRecordToProduce = {
    topic: options.topic,
    value: record.value ?? Buffer.alloc(0),
    headers,
  };
  if (record.key != null && record.key.length > 0) out.key = record.key;
  return out;
}
