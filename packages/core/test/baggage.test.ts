import {
  ConfigurationError,
  createMediator,
  createMessageCatalog,
  createMessageProcessor,
  currentContext,
  defineCommand,
  defineEvent,
  extractContext,
  handle,
  injectContext,
  jsonPayloadSerializer,
  on,
  runWithContext,
} from '@cqrs-ts/core';
import { createEnvelopeDecoder, eventAttributes } from '@cqrs-ts/core/spi';
import { describe, expect, it } from 'vitest';

// Issues 11 and 12: W3C baggage the application opts into travels from the dispatch through the outbox envelope to
// the consumer, like tracestate; without the opt-in nothing is carried.
const Placed = defineEvent('baggage.placed').withPayload<{ id: string }>();
const Place = defineCommand('baggage.place').withPayload<{ id: string }>();
const BAGGAGE = 'userId=alice,region=eu-west;ttl=3';

describe('W3C baggage (opt-in)', () => {
  it('is carried by messages created in a context that has it, and only then', () => {
    expect(Placed.create({ id: 'a' }).metadata.baggage).toBeUndefined();
    const e = runWithContext({ correlationId: 'c-1', baggage: BAGGAGE }, () => Placed.create({ id: 'a' }));
    expect(e.metadata.baggage).toBe(BAGGAGE);
    expect(Placed.create({ id: 'b' }, { baggage: 'k=v' }).metadata.baggage).toBe('k=v');
    for (const bad of ['', 'a\nb', 'x'.repeat(8193), 42])
      expect(() => runWithContext({ correlationId: 'c', baggage: bad as string }, () => 0)).toThrowError(
        ConfigurationError,
      );
    expect(() => Placed.create({ id: 'c' }, { baggage: 'bad\u0000' })).toThrowError(/baggage/u);
  });

  it('reaches the events a handler records in a nested dispatch', async () => {
    let seen: string | undefined;
    const mediator = createMediator({
      handlers: [
        handle(Place, async ({ payload }, ctx) => {
          ctx.emit(Placed, { id: payload.id });
        }),
        on(Placed, (event) => {
          seen = event.metadata.baggage;
        }),
      ],
    });
    await runWithContext({ correlationId: 'c-2', baggage: BAGGAGE }, () =>
      mediator.send(Place.create({ id: 'x' })),
    );
    expect(seen).toBe(BAGGAGE);
  });

  it('goes on the wire as the baggage attribute and back into the consumer context', async () => {
    const event = runWithContext({ correlationId: 'c-3', baggage: BAGGAGE }, () =>
      Placed.create({ id: 'w' }),
    );
    const attributes = eventAttributes(event, 'urn:test', 'application/json', null);
    expect(attributes.baggage).toBe(BAGGAGE);
    const data = jsonPayloadSerializer.serialize(event);
    const decoder = createEnvelopeDecoder({ catalog: createMessageCatalog([Placed]) });
    expect((await decoder.decode(attributes, data)).metadata.baggage).toBe(BAGGAGE);
    // one cqrs-ts cannot carry on is left out, never a reason to dead-letter the event
    const bad = await decoder.decode({ ...attributes, baggage: 'a\u0001b' }, data);
    expect(bad.metadata.baggage).toBeUndefined();

    let inHandler: string | undefined;
    let onEmitted: string | undefined;
    const processor = createMessageProcessor({
      name: 'baggage',
      catalog: createMessageCatalog([Placed]),
      handle: () => {
        inHandler = currentContext()?.baggage;
        onEmitted = Placed.create({ id: 'next' }).metadata.baggage;
      },
    });
    const d = await processor.process({ attributes, data, deliveryAttempt: 1, source: 'test' });
    expect(d.action).toBe('ack');
    expect(inHandler).toBe(BAGGAGE);
    expect(onEmitted).toBe(BAGGAGE);
  });

  it('is read from headers only when asked, and written back out', () => {
    const headers = { 'x-correlation-id': 'c-4', baggage: BAGGAGE };
    expect(extractContext(headers).baggage).toBeUndefined();
    expect(extractContext(headers, { baggage: true }).baggage).toBe(BAGGAGE);
    const reported: string[] = [];
    const bad = extractContext(
      { 'x-correlation-id': 'c-5', baggage: 'x\u0002' },
      { baggage: true, onInvalid: (i) => reported.push(i.header) },
    );
    expect(bad.baggage).toBeUndefined();
    expect(reported).toEqual(['baggage']);
    const out = runWithContext({ correlationId: 'c-6', baggage: BAGGAGE }, () => injectContext());
    expect(out.baggage).toBe(BAGGAGE);
  });
});
