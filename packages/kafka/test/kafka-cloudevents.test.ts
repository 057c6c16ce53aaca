/**
 * CloudEvents conformance of the Kafka binding, offline: the official SDK's Kafka codec encodes the vectors in
 * binary and structured mode and cqrs-ts reads the records as its consumer does (headers, then the processor's
 * decoder); records cqrs-ts builds decode and validate with the SDK's Kafka codec.
 */
import { createMessageCatalog, defineEvent, runWithContext } from '@cqrs-ts/core';
import { createEnvelopeDecoder, createOutboxEncoder, toOutboxMessages } from '@cqrs-ts/core/spi';
import { buildKafkaRecord, fromKafkaHeaders } from '@cqrs-ts/kafka';
import { CLOUDEVENTS_VECTORS, CONFORMANCE_TYPE } from '@cqrs-ts/testing/contracts';
import { CloudEvent, Kafka } from 'cloudevents';
import { describe, expect, it } from 'vitest';

const Shipped = defineEvent(CONFORMANCE_TYPE, {
  topic: 'orders',
  key: (p: { orderId: string }) => p.orderId,
}).withPayload<{
  orderId: string;
  lines?: number;
}>();
const decoder = createEnvelopeDecoder({ catalog: createMessageCatalog([Shipped]) });

describe('kafka CloudEvents conformance (the SDK Kafka codec, offline)', () => {
  for (const mode of ['binary', 'structured'] as const) {
    it(`reads the vectors the SDK encodes in ${mode} mode`, async () => {
      for (const vector of CLOUDEVENTS_VECTORS) {
        const event = new CloudEvent(vector as never);
        const record = mode === 'binary' ? Kafka.binary(event) : Kafka.structured(event);
        const headers = Object.entries(record.headers)
          .filter((h): h is [string, string] => typeof h[1] === 'string')
          .map(([k, v]) => [Buffer.from(k), Buffer.from(v)] as const);
        const value = typeof record.value === 'string' ? record.value : JSON.stringify(record.value);
        const decoded = await decoder.decodeMessage(fromKafkaHeaders(headers), Buffer.from(value));
        expect(decoded.event.payload, vector.id).toEqual(vector.data);
        expect(decoded.attributes.id).toBe(vector.id);
        expect(decoded.attributes.source).toBe(vector.source);
        if (vector.subject !== undefined) expect(decoded.attributes.subject).toBe(vector.subject);
        if (vector.shopregion !== undefined) expect(decoded.attributes.shopregion).toBe(vector.shopregion);
        if (vector.time !== undefined)
          expect(decoded.event.metadata.requestedAt).toBe(new Date(Date.parse(vector.time)).toISOString());
      }
    });
  }

  it('builds records the SDK decodes and validates, the ordering key as the record key', () => {
    const encoder = createOutboxEncoder({ source: 'https://cqrs-ts.example/orders' });
    const events = runWithContext(
      {
        correlationId: 'checkout-1',
        traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01',
        tracestate: 'vendor=opaque',
      },
      () => [Shipped.create({ orderId: 'a-1', lines: 1 }), Shipped.create({ orderId: 'Zoë 🚚' })],
    );
    for (const [i, message] of toOutboxMessages(encoder.encode(events, Date.now())).entries()) {
      const record = buildKafkaRecord(message, 'orders', 0);
      const headers: Record<string, string> = {};
      for (const [k, v] of record.headers!) headers[k.toString()] = v.toString();
      const event = Kafka.toEvent({
        headers,
        key: record.key!.toString(),
        value: record.value!.toString(),
      } as never) as CloudEvent<unknown>;
      expect(event.validate()).toBe(true);
      const sent = events[i]!;
      expect(event.id).toBe(sent.metadata.requestId);
      expect(event.source).toBe('https://cqrs-ts.example/orders');
      expect(event.type).toBe(CONFORMANCE_TYPE);
      expect(event.data).toEqual(sent.payload);
      expect(event.tracestate).toBe('vendor=opaque');
      expect((event as unknown as { partitionkey: string }).partitionkey).toBe(sent.payload.orderId);
    }
  });
});
