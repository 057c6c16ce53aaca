import {
  consistencyToken,
  createDocumentReader,
  createInMemoryEventStore,
  createInMemoryOutboxStore,
  createInMemoryProjectionStore,
  createProjectionRunner,
  defineDocumentProjection,
  defineEvent,
} from '@cqrs-ts/core';

const ItemAdded = defineEvent('cart.item-added').withPayload<{ cartId: string; price: number }>();
const CartEmptied = defineEvent('cart.emptied').withPayload<{ cartId: string }>();

// A document per cart: evolve(doc | null, event) -> doc | null (null deletes it).
const cartTotals = defineDocumentProjection<{ items: number; total: number }>({
  name: 'cart-totals',
  events: [ItemAdded, CartEmptied],
  documentId: (e) => (e.payload as { cartId: string }).cartId,
  evolve: (doc, e) =>
    e.type === CartEmptied.type
      ? null
      : {
          items: (doc?.items ?? 0) + 1,
          total: (doc?.total ?? 0) + (e.payload as { price: number }).price,
        },
});

const outbox = createInMemoryOutboxStore();
const log = createInMemoryEventStore({ outbox });
const store = createInMemoryProjectionStore();
const runner = createProjectionRunner({ log, store, projections: [cartTotals] });

const written = [
  ItemAdded.create({ cartId: 'c1', price: 5 }),
  ItemAdded.create({ cartId: 'c1', price: 7 }),
  ItemAdded.create({ cartId: 'c2', price: 1 }),
  CartEmptied.create({ cartId: 'c2' }),
];
await outbox.transaction((tx) => outbox.append(tx, written));

const before = await runner.status('cart-totals');
console.log(`lag before: ${before.lagEvents} events`);
runner.start();
await runner.waitFor('cart-totals', consistencyToken(written));
const carts = createDocumentReader(store, cartTotals);
console.log('c1:', JSON.stringify(await carts.get('c1')), 'c2:', String(await carts.get('c2')));
const after = await runner.status('cart-totals');
console.log(`lag after: ${after.lagEvents} events, state ${after.state}`);
await runner.stop();
