import {
  type AnyEvent,
  consistencyToken,
  createInMemoryEventStore,
  createInMemoryOutboxStore,
  createInMemoryProjectionStore,
  createLogDecoder,
  createMessageCatalog,
  createProjectionRunner,
  defineEvent,
  defineProjection,
  EnvelopeError,
  type EventLogEntry,
  SerializationError,
} from '@cqrs-ts/core';
import { createEnvelopeDecoder } from '@cqrs-ts/core/spi';
import { describe, expect, it } from 'vitest';

// Issue 15 (read side): the decode of every event a projection reads was cut down (no second envelope check, no
// parse and format of a time already in toISOString() form, metadata built without spreads). These pin what
// the decode returns and rejects, whichever path it takes.
const Placed = defineEvent('shop.placed').withPayload<{ orderId: string }>();
const utf8 = new TextEncoder();
const data = utf8.encode('{"orderId":"o1"}');
const base = {
  specversion: '1.0',
  id: '01938a4e-7c1a-7000-8000-000000000001',
  source: 'urn:shop',
  type: 'shop.placed',
  datacontenttype: 'application/json',
};

const entry = (overrides: Partial<Record<keyof EventLogEntry, unknown>> = {}): EventLogEntry =>
  ({
    position: '1',
    id: base.id,
    type: base.type,
    topic: base.type,
    key: null,
    streamId: null,
    streamVersion: null,
    payload: data,
    headers: base,
    contentEncoding: 'identity',
    createdAt: 0,
    ...overrides,
  }) as EventLogEntry;

describe('issue 15: decoding stored events', () => {
  it('gives every time the instant Date.parse reads, in toISOString() form, and rejects what it cannot read', async () => {
    const decoder = createEnvelopeDecoder();
    const times = [
      '2026-12-06T03:21:35.445Z',
      '1970-01-01T00:00:00.000Z',
      '0000-01-01T00:00:00.000Z',
      '9999-12-31T23:59:59.999Z',
      '2024-02-29T12:00:00.000Z',
      '2023-02-29T12:00:00.000Z',
      '1900-02-29T00:00:00.000Z',
      '2000-02-29T00:00:00.000Z',
      '2024-02-30T00:00:00.000Z',
      '2024-04-31T00:00:00.000Z',
      '2024-01-01T24:00:00.000Z',
      '2024-01-01T23:60:00.000Z',
      '2024-01-01T23:59:60.000Z',
      '2024-00-10T00:00:00.000Z',
      '2024-13-10T00:00:00.000Z',
      '2024-01-00T00:00:00.000Z',
      '2024-01-32T00:00:00.000Z',
      '2024-01-01T00:00:00.000z',
      '2024-01-01t00:00:00.000Z',
      '2024-01-01T00:00:00.00aZ',
      '+02024-01-01T00:00:00.000Z',
      '2024-01-01T00:00:00Z',
      '2024-01-01T01:00:00.000+01:00',
      '2024-01-01T00:00:00.1234Z',
      '2024-01-01',
      'yesterday',
    ];
    for (const time of times) {
      const t = Date.parse(time);
      const got = await decoder.decode({ ...base, time }, data).then(
        (e) => e.metadata.requestedAt,
        (e: unknown) => e,
      );
      if (Number.isNaN(t)) {
        expect(got, time).toBeInstanceOf(EnvelopeError);
        expect((got as EnvelopeError).problem, time).toBe('invalid-attribute');
      } else expect(got, time).toBe(new Date(t).toISOString());
    }
  });

  it('checks the source of each event, also after one that passed', async () => {
    const decoder = createEnvelopeDecoder();
    for (const source of ['urn:shop', 'not a uri', 'urn:shop', 'bad source', 'https://shop.example/orders']) {
      const ok = await decoder.decode({ ...base, source }, data).then(
        () => true,
        (e: unknown) => (e as EnvelopeError).problem,
      );
      expect(ok, source).toBe(source.includes(' ') ? 'invalid-attribute' : true);
    }
  });

  it('builds metadata with the same keys, in the same order, with and without the optional attributes', async () => {
    const decoder = createEnvelopeDecoder();
    const plain = await decoder.decode(base, data);
    // Always there (maybe undefined), then the two optional keys when present, attributes last.
    const always = 'requestId correlationId causationId requestedBy requestedAt tenantId traceparent'.split(
      ' ',
    );
    expect(Object.keys(plain.metadata)).toEqual([...always, 'attributes']);
    const full = await decoder.decode(
      {
        ...base,
        traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01',
        tracestate: 'k=v',
        baggage: 'user=alice',
        cqrsattributes: '{"schema":"2"}',
      },
      data,
    );
    expect(Object.keys(full.metadata)).toEqual([...always, 'tracestate', 'baggage', 'attributes']);
    expect(full.metadata).toMatchObject({
      tracestate: 'k=v',
      baggage: 'user=alice',
      attributes: { schema: '2' },
    });
  });

  it('rejects (never throws) an entry it cannot read, with or without a catalog', async () => {
    const bad = [
      entry({ headers: { ...base, specversion: 1 } }),
      entry({ payload: 'not bytes' }),
      entry({ contentEncoding: 'zstd' }),
      entry({ headers: { ...base, time: 'never' } }),
    ];
    for (const decoder of [
      createLogDecoder(),
      createLogDecoder({ catalog: createMessageCatalog([Placed]) }),
    ]) {
      expect((await decoder.decode(entry())).payload).toEqual({ orderId: 'o1' });
      for (const e of bad) {
        let result: Promise<unknown> | undefined;
        expect(() => {
          result = decoder.decode(e);
        }).not.toThrow();
        const error = await result!.then(
          () => undefined,
          (x: unknown) => x,
        );
        expect(error instanceof SerializationError || error instanceof EnvelopeError).toBe(true);
      }
    }
  });

  it('waitFor resolves at once for events applied before it was asked, and later for the ones applied after', async () => {
    const outbox = createInMemoryOutboxStore();
    const log = createInMemoryEventStore({ outbox });
    const applied: string[] = [];
    const runner = createProjectionRunner({
      log,
      store: createInMemoryProjectionStore(),
      projections: [
        defineProjection<unknown>({
          name: 'orders',
          events: [Placed],
          apply: (e) => void applied.push((e.payload as { orderId: string }).orderId),
        }),
      ],
    });
    const append = async (...ids: string[]) => {
      const events = ids.map((orderId) => Placed.create({ orderId }) as AnyEvent);
      await outbox.transaction((tx) => outbox.append(tx, events));
      return events;
    };
    try {
      const early = await append('a', 'b');
      await runner.catchUp();
      await runner.waitFor('orders', consistencyToken(early)); // applied before anyone waited
      const late = await append('c');
      let done = false;
      const waiting = runner.waitFor('orders', consistencyToken([...early, ...late])).then(() => {
        done = true;
      });
      await Promise.resolve();
      expect(done).toBe(false);
      await runner.catchUp();
      await waiting;
      const later = await append('d');
      await runner.catchUp();
      await runner.waitFor('orders', consistencyToken(later)); // applied after the first waitFor
      expect(applied).toEqual(['a', 'b', 'c', 'd']);
    } finally {
      await runner.stop();
    }
  });
});
