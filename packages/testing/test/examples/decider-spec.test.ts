import { deciderSpec } from '@cqrs-ts/testing';
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

const cart = deciderSpec({ initialState, evolve, decide });

it('opens the cart with its first item', () =>
  cart
    .given()
    .when(AddItem.create({ cartId: 'c1', sku: 'book' }))
    .thenEvents([CartOpened.create({ cartId: 'c1' }), ItemAdded.create({ cartId: 'c1', sku: 'book' })]));

it('checks out a cart with items', () =>
  cart
    .given(CartOpened.create({ cartId: 'c1' }), ItemAdded.create({ cartId: 'c1', sku: 'book' }))
    .when(CheckOut.create({ cartId: 'c1' }))
    .thenState({ status: 'checked-out', items: ['book'] }));

it('does nothing for an empty cart', () =>
  cart
    .given(CartOpened.create({ cartId: 'c1' }))
    .when(CheckOut.create({ cartId: 'c1' }))
    .thenNothingHappened());

it('refuses items once checked out', () =>
  cart
    .givenState({ status: 'checked-out', items: ['book'] })
    .when(AddItem.create({ cartId: 'c1', sku: 'pen' }))
    .thenThrows(CartClosedError));

it('compares events by type and payload', () =>
  cart
    .given(CartOpened.create({ cartId: 'c1' }), ItemAdded.create({ cartId: 'c1', sku: 'book' }))
    .when(CheckOut.create({ cartId: 'c1' }))
    .thenEvents({ type: CartCheckedOut.type, payload: { cartId: 'c1', items: 1 } }));
