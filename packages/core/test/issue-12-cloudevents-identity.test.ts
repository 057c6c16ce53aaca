import {
  type AnyEvent,
  createInMemoryInboxGuard,
  createMessageCatalog,
  createMessageProcessor,
  defineEvent,
  ENVELOPE_PROBLEMS,
  EnvelopeError,
  type IncomingMessage,
} from '@cqrs-ts/core';
import { createEnvelopeDecoder, requestIdOf } from '@cqrs-ts/core/spi';
import { describe, expect, it } from 'vitest';

// Issue 12: messages of other CloudEvents producers were lost: a non-UUID id was dead-lettered ("invalid
// requestId") when a catalog was set, and the inbox took a second producer's event reusing an id for a duplicate.
const Shipped = defineEvent('shop.shipped').withPayload<{ orderId: string }>();
const catalog = createMessageCatalog([Shipped]);
const utf8 = new TextEncoder();

const incoming = (attributes: Record<string, string>, data: unknown): IncomingMessage => ({
  attributes: {
    specversion: '1.0',
    type: 'shop.shipped',
    datacontenttype: 'application/json',
    ...attributes,
  },
  data: utf8.encode(JSON.stringify(data)),
  deliveryAttempt: 1,
  source: 'test',
});

describe('issue 12: messages of other CloudEvents producers', () => {
  it('handles an event whose id is not a UUID (ULID, number, own format), with a catalog', async () => {
    const seen: AnyEvent[] = [];
    const processor = createMessageProcessor({ name: 'billing', catalog, handle: (e) => void seen.push(e) });
    for (const id of ['01ARZ3NDEKTSV4RRFFQ69G5FAV', '42', 'order 7/line 2', 'ünïcode-id']) {
      const d = await processor.process(incoming({ id, source: 'urn:shop' }, { orderId: id }));
      expect(d, id).toEqual({ action: 'ack', outcome: 'handled' });
    }
    expect(seen.map((e) => (e.payload as { orderId: string }).orderId)).toEqual([
      '01ARZ3NDEKTSV4RRFFQ69G5FAV',
      '42',
      'order 7/line 2',
      'ünïcode-id',
    ]);
    // cqrs-ts's own request id is derived from source and id: a UUID, the same for every delivery
    expect(seen[0]!.metadata.requestId).toBe(requestIdOf('urn:shop', '01ARZ3NDEKTSV4RRFFQ69G5FAV'));
    expect(seen[0]!.metadata.requestId).toMatch(
      /^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/,
    );
    expect(requestIdOf('urn:other', '01ARZ3NDEKTSV4RRFFQ69G5FAV')).not.toBe(seen[0]!.metadata.requestId);
  });

  it('keeps the correlation and causation ids the producer chose', async () => {
    const seen: AnyEvent[] = [];
    const processor = createMessageProcessor({ name: 'billing', catalog, handle: (e) => void seen.push(e) });
    await processor.process(
      incoming(
        { id: 'e-1', source: 'urn:shop', correlationid: 'checkout:77', causationid: 'cmd-9' },
        { orderId: 'o' },
      ),
    );
    expect(seen[0]!.metadata.correlationId).toBe('checkout:77');
    expect(seen[0]!.metadata.causationId).toBe('cmd-9');
  });

  it('deduplicates on source and id: a second producer reusing an id is handled, a redelivery is not', async () => {
    const handled: string[] = [];
    const processor = createMessageProcessor({
      name: 'billing',
      catalog,
      inbox: createInMemoryInboxGuard(),
      handle: (e, c) =>
        void handled.push(`${c.message.attributes.source} ${(e.payload as { orderId: string }).orderId}`),
    });
    const id = '0190b6f4-8d7e-7c3a-9f00-0123456789ab';
    const eu = await processor.process(
      incoming({ id, source: 'https://eu.shop.example' }, { orderId: 'eu-1' }),
    );
    const us = await processor.process(
      incoming({ id, source: 'https://us.shop.example' }, { orderId: 'us-1' }),
    );
    const again = await processor.process(
      incoming({ id, source: 'https://eu.shop.example' }, { orderId: 'eu-1' }),
    );
    expect([eu, us, again]).toEqual([
      { action: 'ack', outcome: 'handled' },
      { action: 'ack', outcome: 'handled' },
      { action: 'ack', outcome: 'duplicate' },
    ]);
    expect(handled).toEqual(['https://eu.shop.example eu-1', 'https://us.shop.example us-1']);
  });

  it('names the real problem of a rejected envelope from a closed list', async () => {
    const decoder = createEnvelopeDecoder({ catalog });
    const problem = async (attributes: Record<string, string>, data = utf8.encode('{"orderId":"o"}')) => {
      const error = await decoder.decode(attributes, data).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(EnvelopeError);
      return (error as EnvelopeError).problem;
    };
    const ok = { specversion: '1.0', id: 'x', source: 'urn:shop', type: 'shop.shipped' };
    expect(await problem({ ...ok, datacontenttype: 'application/cloudevents-batch+json' })).toBe(
      'unsupported-mode',
    );
    expect(await problem({ ...ok, datacontenttype: 'application/cloudevents+avro' })).toBe(
      'unsupported-mode',
    );
    expect(await problem({ ...ok, specversion: '0.3' })).toBe('unsupported-specversion');
    expect(await problem({ id: 'x', source: 'urn:shop', type: 'shop.shipped' })).toBe('missing-attribute');
    expect(await problem({ ...ok, id: '' })).toBe('missing-attribute');
    expect(await problem({ ...ok, source: 'not a uri reference' })).toBe('invalid-attribute');
    expect(await problem({ ...ok, time: 'yesterday' })).toBe('invalid-attribute');
    expect(await problem({ ...ok, datacontenttype: 'application/x-thing' })).toBe('unsupported-content-type');
    expect(await problem({ ...ok, contentencoding: 'zstd' })).toBe('unsupported-encoding');
    expect(await problem(ok, utf8.encode('{'))).toBe('malformed-data');
    expect(ENVELOPE_PROBLEMS).toContain('too-large');
  });
});
