import { DatabaseSync } from 'node:sqlite';
import { create, toBinary } from '@bufbuild/protobuf';
import {
  type AnyEvent,
  createInMemoryBroker,
  createMessageCatalog,
  createMessageProcessor,
  createOutboxRelay,
  type DeliveredMessage,
  type Disposition,
  defineEvent,
  EnvelopeError,
  isCqrsError,
  jsonPayloadSerializer,
  runWithContext,
} from '@cqrs-ts/core';
import { createEnvelopeDecoder, eventAttributes } from '@cqrs-ts/core/spi';
import { createProtobufSerializer, PROTOBUF_CONTENT_TYPE, toPlainObject } from '@cqrs-ts/protobuf';
import { createSqliteOutboxStore, migrate } from '@cqrs-ts/sqlite';
import { CloudEvent } from 'cloudevents';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { LineSchema, NestedSchema, OrderPlacedSchema } from './fixtures.ts';

const OrderPlaced = defineEvent('shop.order-placed', {
  schema: z.object({
    orderId: z.string().min(1),
    amountCents: z.bigint().nonnegative(),
    lines: z.array(z.object({ sku: z.string().min(1), qty: z.number().int().positive() })),
    blob: z.instanceof(Uint8Array),
    status: z.number().int(),
    tags: z.record(z.string(), z.string()),
  }),
  key: (p) => p.orderId,
});
const Noted = defineEvent('shop.noted', { schema: z.object({ text: z.string() }) });
const catalog = createMessageCatalog([OrderPlaced, Noted]);
const TRACE = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';

const pb = createProtobufSerializer({ types: { [OrderPlaced.type]: OrderPlacedSchema } });

const payload = () => ({
  orderId: 'o-1',
  amountCents: 9_007_199_254_740_993n, // beyond Number.MAX_SAFE_INTEGER
  lines: [
    { sku: 'apple', qty: 2 },
    { sku: 'pear', qty: 1 },
  ],
  blob: new Uint8Array([0, 1, 254, 255]),
  status: 1,
  tags: { channel: 'web' },
});

function attributesOf(event: AnyEvent): Record<string, string> {
  return eventAttributes(event, 'svc', pb.contentType, null, pb.attributes?.(event));
}

describe('protobuf serializer', () => {
  it('round-trips a payload to binary and back to a plain object (bigint, bytes, enums, maps)', () => {
    const event = OrderPlaced.create(payload());
    const bytes = pb.serialize(event);
    // it is real protobuf: the schema's own encoder gives the same bytes
    expect(bytes).toEqual(toBinary(OrderPlacedSchema, create(OrderPlacedSchema, payload() as never)));
    const back = pb.deserialize(OrderPlaced.type, bytes);
    expect(back).toEqual(payload());
    expect(JSON.stringify(Object.keys(back as object))).not.toContain('$typeName');
    expect((back as { lines: object[] }).lines[0]).not.toHaveProperty('$typeName');
  });

  it('decodes to canonical proto3 JSON when asked', () => {
    const json = createProtobufSerializer({ types: { x: OrderPlacedSchema }, decodeAs: 'json' });
    const out = json.deserialize('x', pb.serialize(OrderPlaced.create(payload())));
    expect(out).toEqual({
      orderId: 'o-1',
      amountCents: '9007199254740993',
      lines: [
        { sku: 'apple', qty: 2 },
        { sku: 'pear', qty: 1 },
      ],
      blob: 'AAH+/w==',
      status: 'STATUS_PAID',
      tags: { channel: 'web' },
    });
  });

  it('writes application/protobuf and the message name as dataschema', () => {
    const event = OrderPlaced.create(payload());
    expect(pb.contentType).toBe(PROTOBUF_CONTENT_TYPE);
    expect(attributesOf(event)).toMatchObject({
      datacontenttype: 'application/protobuf',
      dataschema: 'https://type.googleapis.com/shop.v1.OrderPlaced',
    });
    const custom = createProtobufSerializer({
      types: { [OrderPlaced.type]: OrderPlacedSchema },
      dataschema: (n) => `urn:proto:${n}`,
    });
    expect(custom.attributes?.(event)).toEqual({ dataschema: 'urn:proto:shop.v1.OrderPlaced' });
    const none = createProtobufSerializer({
      types: { [OrderPlaced.type]: OrderPlacedSchema },
      dataschema: false,
    });
    expect(none.attributes?.(event)).toBeUndefined();
    expect(pb.schemaOf(OrderPlaced.type)).toBe(OrderPlacedSchema);
  });

  it('writes a default dataschema the CloudEvents SDK validates, and refuses one that is not an absolute URI', () => {
    const event = OrderPlaced.create(payload());
    const attrs = attributesOf(event);
    const ce = new CloudEvent({
      id: event.metadata.requestId,
      source: '/orders',
      type: OrderPlaced.type,
      datacontenttype: attrs.datacontenttype!,
      dataschema: attrs.dataschema!,
      data: pb.serialize(event),
    });
    expect(ce.validate()).toBe(true);
    for (const bad of ['type.googleapis.com/x', '', 'https://a b', 42]) {
      expect(() =>
        createProtobufSerializer({
          types: { [OrderPlaced.type]: OrderPlacedSchema },
          dataschema: () => bad as string,
        }),
      ).toThrowError(/must be an absolute URI/u);
    }
  });

  it('refuses types without a schema: SerializationError when producing, EnvelopeError when consuming', () => {
    const noted = Noted.create({ text: 'hi' });
    let error: unknown;
    try {
      pb.serialize(noted);
    } catch (e) {
      error = e;
    }
    expect(isCqrsError(error) && error.code).toBe('CQRS_SERIALIZATION');
    expect(() => pb.deserialize('shop.noted', new Uint8Array())).toThrowError(EnvelopeError);
  });

  it('falls back to another serializer (and its content type) for types without a schema', async () => {
    const mixed = createProtobufSerializer({
      types: { [OrderPlaced.type]: OrderPlacedSchema },
      fallback: jsonPayloadSerializer,
    });
    const noted = Noted.create({ text: 'hi' });
    const attrs = eventAttributes(noted, 'svc', mixed.contentType, null, mixed.attributes?.(noted));
    expect(attrs.datacontenttype).toBe('application/json');
    expect(attrs.dataschema).toBeUndefined();
    const decoded = await createEnvelopeDecoder({ serializers: [mixed], catalog }).decode(
      attrs,
      mixed.serialize(noted),
    );
    expect(decoded.payload).toEqual({ text: 'hi' });
    expect(() =>
      createProtobufSerializer({
        types: {},
        fallback: { ...jsonPayloadSerializer, contentType: PROTOBUF_CONTENT_TYPE },
      }),
    ).toThrowError(/another content type/);
  });

  it('wraps payloads that do not fit the schema in a SerializationError', () => {
    const bad = { ...OrderPlaced.create(payload()), payload: { amountCents: 'not a number' } } as AnyEvent;
    expect(() => pb.serialize(bad)).toThrowError(/does not fit shop\.v1\.OrderPlaced/);
    const notObject = { ...OrderPlaced.create(payload()), payload: 'text' } as AnyEvent;
    expect(() => pb.serialize(notObject)).toThrowError(/must be an object/);
  });

  it('turns malformed bytes and too-deep nesting into EnvelopeError', () => {
    expect(() => pb.deserialize(OrderPlaced.type, new Uint8Array([0xff, 0xff, 0xff]))).toThrowError(
      EnvelopeError,
    );
    expect(() => pb.deserialize(OrderPlaced.type, new TextEncoder().encode('{"orderId":"x"}'))).toThrowError(
      /not a valid shop\.v1\.OrderPlaced/,
    );
    let deep = create(NestedSchema);
    for (let i = 0; i < 20; i++) deep = create(NestedSchema, { child: deep } as never);
    const bytes = toBinary(NestedSchema, deep);
    const shallow = createProtobufSerializer({ types: { n: NestedSchema }, recursionLimit: 5 });
    expect(() => shallow.deserialize('n', bytes)).toThrowError(EnvelopeError);
    expect(createProtobufSerializer({ types: { n: NestedSchema } }).deserialize('n', bytes)).toBeTruthy();
  });

  it('rejects bad options', () => {
    expect(() => createProtobufSerializer(undefined as never)).toThrowError(/types must be an object/);
    expect(() => createProtobufSerializer({ types: { a: {} as never } })).toThrowError(
      /not mapped to a message/,
    );
    expect(() => createProtobufSerializer({ types: {}, decodeAs: 'xml' as never })).toThrowError(/decodeAs/);
    expect(() => createProtobufSerializer({ types: {}, recursionLimit: 0 })).toThrowError(/recursionLimit/);
  });

  it('strips $typeName recursively but keeps bigint and bytes', () => {
    const line = create(LineSchema, { sku: 'a', qty: 1 });
    expect(toPlainObject({ a: [line], b: { c: line }, n: 1n, u: new Uint8Array([1]) })).toEqual({
      a: [{ sku: 'a', qty: 1 }],
      b: { c: { sku: 'a', qty: 1 } },
      n: 1n,
      u: new Uint8Array([1]),
    });
  });
});

describe('protobuf through the outbox, the relay and a consumer', () => {
  it('publishes from a SQLite outbox and decodes, validates and dispatches on the other side', async () => {
    const db = new DatabaseSync(':memory:');
    const tables = { outbox: 'pb_outbox', inbox: 'pb_inbox' };
    migrate(db, { tables });
    const store = createSqliteOutboxStore({ database: db, tables, serializer: pb, source: 'orders-svc' });
    const broker = createInMemoryBroker({ serializers: [pb] });
    const seen: DeliveredMessage[] = [];
    broker.subscribe('*', (m) => {
      seen.push(m);
    });

    const event = await runWithContext({ correlationId: 'corr-pb', traceparent: TRACE }, () =>
      OrderPlaced.create(payload()),
    );
    db.exec('BEGIN');
    await store.append(db, [event]);
    db.exec('COMMIT');
    const relay = createOutboxRelay({ store, publisher: broker });
    expect((await relay.runOnce()).published).toBe(1);
    expect(seen).toHaveLength(1);
    const delivered = seen[0]!;
    expect(delivered.headers).toMatchObject({
      datacontenttype: 'application/protobuf',
      dataschema: 'https://type.googleapis.com/shop.v1.OrderPlaced',
      correlationid: 'corr-pb',
      traceparent: TRACE,
      subject: 'o-1',
    });
    expect(
      Buffer.from(delivered.body).equals(
        Buffer.from(toBinary(OrderPlacedSchema, create(OrderPlacedSchema, payload() as never))),
      ),
    ).toBe(true);

    const decoder = createEnvelopeDecoder({ serializers: [pb], catalog });
    const decoded = await decoder.decode(delivered.headers, delivered.body);
    expect(decoded.payload).toEqual(payload());
    expect(decoded.metadata.correlationId).toBe('corr-pb');

    const handled: unknown[] = [];
    const processor = createMessageProcessor({
      name: 'pb-consumer',
      catalog,
      serializers: [pb],
      handle: (e) => {
        handled.push(e.payload);
      },
    });
    const disposition = await processor.process({
      attributes: delivered.headers,
      data: delivered.body,
      deliveryAttempt: 1,
      source: delivered.topic,
    });
    expect(disposition).toEqual({ action: 'ack', outcome: 'handled' });
    expect(handled).toEqual([payload()]);
    db.close();
  });

  it('dead-letters payloads that fail validation, malformed bytes and oversized data', async () => {
    const outcomes: Disposition[] = [];
    const processor = createMessageProcessor({
      name: 'pb-consumer',
      catalog,
      serializers: [pb],
      maxBytes: 64,
      handle: () => undefined,
      onDisposition: (d) => outcomes.push(d),
    });
    const valid = OrderPlaced.create(payload());
    const attributes = attributesOf(valid);
    // decodes as protobuf, but the definition rejects it (empty orderId, qty 0)
    const invalid = toBinary(
      OrderPlacedSchema,
      create(OrderPlacedSchema, { orderId: '', lines: [{ sku: 'a', qty: 0 }] } as never),
    );
    const a = await processor.process({ attributes, data: invalid, deliveryAttempt: 1, source: 't' });
    expect(a.action).toBe('dead-letter');
    expect(a.action === 'dead-letter' && a.reason).toMatch(/undecodable: .*Validation/i);

    const b = await processor.process({
      attributes,
      data: new Uint8Array([0xff, 0xff, 0xff]),
      deliveryAttempt: 1,
      source: 't',
    });
    expect(b.action === 'dead-letter' && b.reason).toMatch(/not a valid shop\.v1\.OrderPlaced/);

    const c = await processor.process({
      attributes,
      data: new Uint8Array(65),
      deliveryAttempt: 1,
      source: 't',
    });
    expect(c.action === 'dead-letter' && c.reason).toMatch(/65 bytes, more than 64/);

    // the valid message still flows
    const d = await processor.process({
      attributes,
      data: pb.serialize(valid),
      deliveryAttempt: 1,
      source: 't',
    });
    expect(d).toEqual({ action: 'ack', outcome: 'handled' });
    expect(outcomes.map((o) => o.action)).toEqual(['dead-letter', 'dead-letter', 'dead-letter', 'ack']);
  });
});
