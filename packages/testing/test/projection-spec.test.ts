import {
  consistencyToken,
  createDocumentReader,
  createInMemoryEventStore,
  createInMemoryOutboxStore,
  createInMemoryProjectionStore,
  createProjectionRunner,
  defineDocumentProjection,
  defineEvent,
  defineProjection,
} from '@cqrs-ts/core';
import { projectionSpec, projectionsCaughtUp } from '@cqrs-ts/testing';
import { describe, expect, it } from 'vitest';

const ItemAdded = defineEvent('spec.item-added').withPayload<{ cartId: string; price: number }>();
const CartEmptied = defineEvent('spec.cart-emptied').withPayload<{ cartId: string }>();
const Unrelated = defineEvent('spec.unrelated').withPayload<{ n: number }>();

const cartTotals = defineDocumentProjection<{ items: number; total: number }>({
  name: 'spec-cart-totals',
  events: [ItemAdded, CartEmptied],
  documentId: (e) => (e.payload as { cartId: string }).cartId,
  evolve: (doc, e) =>
    e.type === CartEmptied.type
      ? null
      : { items: (doc?.items ?? 0) + 1, total: (doc?.total ?? 0) + (e.payload as { price: number }).price },
});

describe('projectionSpec', () => {
  it('passes when the documents equal the expected ones, after the events and after a replay', async () => {
    await projectionSpec(cartTotals)
      .given(
        ItemAdded.create({ cartId: 'c1', price: 5 }),
        [ItemAdded.create({ cartId: 'c1', price: 7 }), Unrelated.create({ n: 1 })],
        ItemAdded.create({ cartId: 'c2', price: 1 }),
        CartEmptied.create({ cartId: 'c2' }),
      )
      .thenReadModel({ c1: { items: 2, total: 12 } });
    await projectionSpec(cartTotals).given().thenReadModel({});
  });

  it('fails with the difference when the read model is not the expected one', async () => {
    await expect(
      projectionSpec(cartTotals)
        .given(ItemAdded.create({ cartId: 'c1', price: 5 }))
        .thenReadModel({
          c1: { items: 1, total: 6 },
        }),
    ).rejects.toThrowError(/read model after 1 events/u);
  });

  it('fails a projection whose replay gives another read model (state kept outside the store)', async () => {
    let seen = 0;
    const counting = defineDocumentProjection<{ n: number }>({
      name: 'spec-counting',
      events: [ItemAdded],
      documentId: () => 'all',
      evolve: () => ({ n: ++seen }), // counts calls across runs instead of folding the document
    });
    await expect(
      projectionSpec(counting)
        .given(ItemAdded.create({ cartId: 'c1', price: 1 }))
        .thenReadModel({ all: { n: 1 } }),
    ).rejects.toThrowError(/after a rebuild/u);
  });

  it('reads a batch projection through options.read, and catches a reset that leaves rows behind', async () => {
    const totals = new Map<string, number>();
    const batch = (reset: boolean) =>
      defineProjection<unknown>({
        name: `spec-batch-${reset}`,
        events: [ItemAdded],
        apply(e) {
          const p = e.payload as { cartId: string; price: number };
          totals.set(p.cartId, (totals.get(p.cartId) ?? 0) + p.price);
        },
        reset() {
          if (reset) totals.clear();
        },
      });
    const events = [
      ItemAdded.create({ cartId: 'c1', price: 5 }),
      ItemAdded.create({ cartId: 'c1', price: 2 }),
    ];
    const read = () => Object.fromEntries(totals);
    await projectionSpec(batch(true), { read }).given(events).thenReadModel({ c1: 7 });
    totals.clear();
    await expect(
      projectionSpec(batch(false), { read }).given(events).thenReadModel({ c1: 7 }),
    ).rejects.toThrowError(/after a rebuild/u);
    expect(() => projectionSpec(batch(true) as never, {} as never)).toThrowError(/needs options.read/u);
  });

  it('fails at once, naming the event, when the projection throws', async () => {
    const failing = defineDocumentProjection<{ n: number }>({
      name: 'spec-failing',
      events: [ItemAdded],
      documentId: () => 'x',
      evolve: (_doc, e) => {
        if ((e.payload as { price: number }).price < 0) throw new Error('negative price');
        return { n: 1 };
      },
    });
    await expect(
      projectionSpec(failing)
        .given(ItemAdded.create({ cartId: 'c1', price: -1 }))
        .thenReadModel({}),
    ).rejects.toThrowError(/stopped on event spec.item-added .*negative price/u);
  });
});

describe('projectionsCaughtUp', () => {
  it('resolves once a running projection has applied what was appended, and names those behind on timeout', async () => {
    const outbox = createInMemoryOutboxStore();
    const log = createInMemoryEventStore({ outbox });
    const store = createInMemoryProjectionStore();
    const runner = createProjectionRunner({ log, store, projections: [cartTotals], pollMs: 10 });
    runner.start();
    try {
      const events = [ItemAdded.create({ cartId: 'c9', price: 3 })];
      await outbox.transaction((tx) => outbox.append(tx, events));
      await projectionsCaughtUp(runner, [cartTotals.name]);
      expect(await createDocumentReader(store, cartTotals).get('c9')).toEqual({ items: 1, total: 3 });
      await runner.waitFor(cartTotals.name, consistencyToken(events)); // already there
    } finally {
      await runner.stop();
    }
    await outbox.transaction((tx) => outbox.append(tx, [ItemAdded.create({ cartId: 'c9', price: 1 })]));
    await expect(projectionsCaughtUp(runner, [cartTotals.name], 100)).rejects.toThrowError(
      /timed out .*behind: spec-cart-totals/u,
    );
  });
});
