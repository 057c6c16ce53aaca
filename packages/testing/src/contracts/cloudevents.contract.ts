/**
 * CloudEvents conformance of a broker adapter, in both directions: events another producer sends (built and
 * encoded by the official `cloudevents` SDK, published with a plain client, in binary and structured mode) reach
 * the adapter's consumer with their attributes; events the adapter publishes decode and validate with the SDK.
 * The harness does the SDK and client work, so this package does not depend on the SDK.
 * @module
 */

import { gzipSync } from 'node:zlib';
import {
  type AnyEvent,
  createMessageCatalog,
  defineEvent,
  incomingCloudEvent,
  type MessageConsumer,
  runWithContext,
} from '@cqrs-ts/core';
import {
  type CloudEventAttributes,
  createOutboxEncoder,
  decompressData,
  type EnvelopeCompression,
  type MessagePublisher,
  toOutboxMessages,
} from '@cqrs-ts/core/spi';
import { expect } from 'vitest';
import { waitFor } from '../wait-for.ts';
import type { BrokerConsumerOptions } from './broker.contract.ts';
import { describeHarness } from './harness.ts';

/** A CloudEvent as the SDK's constructor takes it and its decoders return it: attributes plus `data`. */
export interface CloudEventFields {
  readonly specversion?: string;
  readonly id: string;
  readonly source: string;
  readonly type: string;
  readonly time?: string;
  readonly subject?: string;
  readonly datacontenttype?: string;
  readonly data?: unknown;
  readonly [extension: string]: unknown;
}

/** What a broker adapter provides to run {@link describeCloudEventsConformance}. */
export interface CloudEventsHarness {
  /** The topic (subject, routing key, stream) the vectors travel on: `'orders'`. */
  readonly topic: 'orders';
  /** Sends `event` as another producer would: encoded by the SDK in `mode`, published with a plain client. */
  send(event: CloudEventFields, mode: 'binary' | 'structured'): Promise<void>;
  /** The adapter's consumer of `topic`. */
  consumer(options: BrokerConsumerOptions): MessageConsumer;
  /** The adapter's publisher; with `compression`, one that compresses (the harness closes it). */
  publisher(options?: { readonly compression?: EnvelopeCompression }): MessagePublisher;
  /**
   * The messages published on `topic` so far, read with a plain client and decoded by the SDK (which validates).
   * A body whose `contentencoding` attribute (or the transport's content encoding) names a compression is
   * decompressed first, as a consumer that honours it would (see {@link readableData}).
   */
  published(count: number): Promise<readonly CloudEventFields[]>;
  reset?(): Promise<void>;
  close(): Promise<void>;
}

/** The event type of the vectors. */
export const CONFORMANCE_TYPE = 'com.example.order.shipped';
/** The topic the adapter publishes the suite's events to (the harness's `topic` must be it). */
const TOPIC = 'orders';
const Shipped = defineEvent(CONFORMANCE_TYPE, { topic: TOPIC }).withPayload<{
  orderId: string;
  lines?: number;
}>();

/**
 * Vectors another producer may send: ids that are not UUIDs, unicode attribute values, optional attributes
 * missing, a time with nanoseconds, a producer's own extension.
 */
export const CLOUDEVENTS_VECTORS: readonly CloudEventFields[] = [
  {
    id: '01HZX3NDEKTSV4RRFFQ69G5FAV',
    source: 'https://shop.example/orders',
    type: CONFORMANCE_TYPE,
    time: '2024-05-06T07:08:09.123Z',
    datacontenttype: 'application/json',
    data: { orderId: 'ulid', lines: 2 },
  },
  {
    id: '42',
    source: 'urn:shop:orders',
    type: CONFORMANCE_TYPE,
    subject: 'Bestellung für Zoë 🚚',
    shopregion: 'eu-west',
    datacontenttype: 'application/json',
    data: { orderId: 'numeric-id' },
  },
  { id: 'order 7/line 2', source: '/orders', type: CONFORMANCE_TYPE, data: { orderId: 'minimal' } },
  {
    id: 'nanos',
    source: 'https://shop.example/orders',
    type: CONFORMANCE_TYPE,
    time: '2024-05-06T07:08:09.123456789Z',
    datacontenttype: 'application/json; charset=utf-8',
    data: { orderId: 'nanosecond-time' },
  },
];

/** A producer's compressed event: JSON data gzipped, marked by the `contentencoding` extension. */
const COMPRESSED_PAYLOAD = { orderId: 'gzip', lines: 3 };
const compressedVector = (): CloudEventFields => ({
  id: 'gzip-1',
  source: 'https://shop.example/orders',
  type: CONFORMANCE_TYPE,
  datacontenttype: 'application/json',
  contentencoding: 'gzip',
  data: gzipSync(JSON.stringify(COMPRESSED_PAYLOAD)),
});

/**
 * For harnesses: the bytes of a published body as the SDK should read them, decompressed when `contentEncoding`
 * (the `contentencoding` attribute, or AMQP's `content-encoding`) names `gzip` or `br`.
 */
export function readableData(body: Uint8Array, contentEncoding: string | undefined): string {
  return Buffer.from(decompressData(body, contentEncoding, 16 * 1024 * 1024, 'published body')).toString(
    'utf8',
  );
}

const SOURCE = 'https://cqrs-ts.example/orders';
const TRACEPARENT = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
const TRACESTATE = 'vendor=opaque,other=1';
const BAGGAGE = 'userId=alice,region=eu%20west;ttl=3';

/** Registers the conformance suite for one broker adapter. */
export function describeCloudEventsConformance(
  name: string,
  setup: () => Promise<CloudEventsHarness | undefined>,
): void {
  describeHarness(`${name} CloudEvents conformance`, setup, (test) => {
    for (const mode of ['binary', 'structured'] as const) {
      test(`consumes events another producer sent in ${mode} mode`, async (h) => {
        const seen: { event: AnyEvent; attributes: CloudEventAttributes }[] = [];
        const consumer = h.consumer({
          catalog: createMessageCatalog([Shipped]),
          handle(event) {
            seen.push({ event, attributes: incomingCloudEvent()! });
          },
        });
        await consumer.start();
        try {
          for (const vector of CLOUDEVENTS_VECTORS) await h.send(vector, mode);
          await waitFor(
            () => seen.length === CLOUDEVENTS_VECTORS.length || consumer.health().deadLettered > 0,
            15_000,
            'every vector',
          );
          expect(consumer.health().deadLettered).toBe(0);
          const byId = new Map(seen.map((s) => [s.attributes.id, s]));
          for (const vector of CLOUDEVENTS_VECTORS) {
            const got = byId.get(vector.id);
            expect(got, vector.id).toBeDefined();
            expect(got!.event.payload).toEqual(vector.data);
            expect(got!.attributes.source).toBe(vector.source);
            expect(got!.attributes.type).toBe(vector.type);
            if (vector.subject !== undefined) expect(got!.attributes.subject).toBe(vector.subject);
            if (vector.shopregion !== undefined) expect(got!.attributes.shopregion).toBe(vector.shopregion);
            if (vector.time !== undefined)
              expect(got!.event.metadata.requestedAt).toBe(new Date(Date.parse(vector.time)).toISOString());
          }
        } finally {
          await consumer.stop();
        }
      });
    }

    for (const mode of ['binary', 'structured'] as const) {
      test(`consumes compressed data another producer sent in ${mode} mode`, async (h) => {
        const seen: AnyEvent[] = [];
        const consumer = h.consumer({
          catalog: createMessageCatalog([Shipped]),
          handle(event) {
            seen.push(event);
          },
        });
        await consumer.start();
        try {
          await h.send(compressedVector(), mode);
          await waitFor(() => seen.length === 1 || consumer.health().deadLettered > 0, 15_000, 'the event');
          expect(consumer.health().deadLettered).toBe(0);
          expect(seen[0]!.payload).toEqual(COMPRESSED_PAYLOAD);
        } finally {
          await consumer.stop();
        }
      });
    }

    test('publishes compressed data marked by contentencoding, with datacontenttype the decoded type', async (h) => {
      const encoder = createOutboxEncoder({ source: SOURCE });
      const payload = { orderId: 'z'.repeat(2_000), lines: 9 };
      const events = [Shipped.create(payload)];
      const publisher = h.publisher({ compression: { algorithm: 'gzip', thresholdBytes: 1 } });
      const results = await publisher.publish(toOutboxMessages(encoder.encode(events, Date.now())));
      expect(results.filter((r) => !r.ok)).toEqual([]);
      const [e] = await h.published(1);
      expect(e!.contentencoding).toBe('gzip');
      expect(e!.datacontenttype).toBe('application/json');
      expect(e!.data).toEqual(payload);
    });

    test('publishes events the SDK decodes and validates', async (h) => {
      const encoder = createOutboxEncoder({ source: SOURCE });
      const events = runWithContext(
        { correlationId: 'checkout-1', traceparent: TRACEPARENT, tracestate: TRACESTATE, baggage: BAGGAGE },
        () => [
          Shipped.create({ orderId: 'a', lines: 1 }),
          Shipped.create({ orderId: 'Zoë 🚚' }, { correlationId: 'checkout-7' }),
        ],
      );
      const results = await h.publisher().publish(toOutboxMessages(encoder.encode(events, Date.now())));
      expect(results.filter((r) => !r.ok)).toEqual([]);
      const decoded = await h.published(events.length);
      expect(decoded.map((e) => e.id)).toEqual(events.map((e) => e.metadata.requestId));
      for (const [i, e] of decoded.entries()) {
        const event = events[i]!;
        expect(e.specversion).toBe('1.0');
        expect(e.source).toBe(SOURCE);
        expect(e.type).toBe(CONFORMANCE_TYPE);
        expect(new Date(e.time as string).toISOString()).toBe(event.metadata.requestedAt);
        expect(e.datacontenttype).toBe('application/json');
        expect(e.data).toEqual(event.payload);
        expect(e.traceparent).toBe(TRACEPARENT);
        expect(e.tracestate).toBe(TRACESTATE);
        expect(e.baggage).toBe(BAGGAGE);
        expect(e.correlationid).toBe(event.metadata.correlationId);
      }
    });
  });
}
