import { createEventSourcedRepository, handle } from '@cqrs-ts/core';
import { handlerSpec } from '@cqrs-ts/testing';
import { it } from 'vitest';
import {
  AddItem,
  CartCheckedOut,
  CartClosedError,
  CartOpened,
  CheckOut,
  decide,
  evolve,
  ItemAdded,
  initialState,
} from './cart-domain.ts';

// The application as it is wired in production, built on the specification's in-memory world.
const spec = handlerSpec((world) => {
  const carts = createEventSourcedRepository({
    name: 'cart',
    store: world.eventStore,
    events: [CartOpened, ItemAdded, CartCheckedOut],
    initialState,
    evolve,
  });
  return {
    handlers: [
      handle(AddItem, async (cmd, ctx) => {
        const { state } = await carts.update(ctx, cmd.payload.cartId, (cart) => decide(cmd, cart));
        return state.items.length;
      }),
      handle(CheckOut, async (cmd, ctx) => {
        await carts.update(ctx, cmd.payload.cartId, (cart) => decide(cmd, cart));
      }),
    ],
  };
});

it('adds an item to an open cart and returns the count', () =>
  spec
    .given('cart-c1', [CartOpened.create({ cartId: 'c1' })])
    .when(AddItem.create({ cartId: 'c1', sku: 'book' }))
    .thenOutcome({ events: [ItemAdded.create({ cartId: 'c1', sku: 'book' })], result: 1 }));

it('checks out', () =>
  spec
    .given('cart-c1', [CartOpened.create({ cartId: 'c1' }), ItemAdded.create({ cartId: 'c1', sku: 'book' })])
    .when(CheckOut.create({ cartId: 'c1' }))
    .thenEvents([CartCheckedOut.create({ cartId: 'c1', items: 1 })]));

it('refuses a checked-out cart and commits nothing', () =>
  spec
    .given('cart-c1', [
      CartOpened.create({ cartId: 'c1' }),
      CartCheckedOut.create({ cartId: 'c1', items: 0 }),
    ])
    .when(AddItem.create({ cartId: 'c1', sku: 'pen' }))
    .thenThrows(CartClosedError));
