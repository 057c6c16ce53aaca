import { defineDocumentProjection, defineEvent } from '@cqrs-ts/core';
import { projectionSpec } from '@cqrs-ts/testing';
import { it } from 'vitest';

const ItemAdded = defineEvent('cart.item-added').withPayload<{ cartId: string; price: number }>();
const CartEmptied = defineEvent('cart.emptied').withPayload<{ cartId: string }>();

const cartTotals = defineDocumentProjection<{ items: number; total: number }>({
  name: 'cart-totals',
  events: [ItemAdded, CartEmptied],
  documentId: (e) => (e.payload as { cartId: string }).cartId,
  evolve: (doc, e) =>
    e.type === CartEmptied.type
      ? null
      : { items: (doc?.items ?? 0) + 1, total: (doc?.total ?? 0) + (e.payload as { price: number }).price },
});

it('totals each cart and forgets emptied ones', () =>
  projectionSpec(cartTotals)
    .given(
      ItemAdded.create({ cartId: 'c1', price: 5 }),
      ItemAdded.create({ cartId: 'c1', price: 7 }),
      ItemAdded.create({ cartId: 'c2', price: 1 }),
      CartEmptied.create({ cartId: 'c2' }),
    )
    .thenReadModel({ c1: { items: 2, total: 12 } }));
