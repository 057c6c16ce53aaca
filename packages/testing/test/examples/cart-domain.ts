import { ConfigurationError, defineCommand, defineEvent, type InferMessage } from '@cqrs-ts/core';

// A small shopping cart, written as a decider: the domain the test kit examples share.
export const CartOpened = defineEvent('cart.opened').withPayload<{ cartId: string }>();
export const ItemAdded = defineEvent('cart.item-added').withPayload<{ cartId: string; sku: string }>();
export const CartCheckedOut = defineEvent('cart.checked-out').withPayload<{
  cartId: string;
  items: number;
}>();
export type CartEvent = InferMessage<typeof CartOpened | typeof ItemAdded | typeof CartCheckedOut>;

export const AddItem = defineCommand('cart.add-item')
  .withPayload<{ cartId: string; sku: string }>()
  .returns<number>();
export const CheckOut = defineCommand('cart.check-out').withPayload<{ cartId: string }>();
export type CartCommand = InferMessage<typeof AddItem | typeof CheckOut>;

export interface Cart {
  readonly status: 'none' | 'open' | 'checked-out';
  readonly items: readonly string[];
}

export const initialState = (): Cart => ({ status: 'none', items: [] });

export function evolve(cart: Cart, event: CartEvent): Cart {
  if (CartOpened.is(event)) return { ...cart, status: 'open' };
  if (ItemAdded.is(event)) return { ...cart, items: [...cart.items, event.payload.sku] };
  return { ...cart, status: 'checked-out' };
}

/** Thrown when a command does not fit the cart's state. */
export class CartClosedError extends ConfigurationError {}

export function decide(command: CartCommand, cart: Cart): CartEvent[] {
  const { cartId } = command.payload;
  if (cart.status === 'checked-out') throw new CartClosedError(`cart ${cartId} is checked out`);
  if (AddItem.is(command)) {
    const opened = cart.status === 'none' ? [CartOpened.create({ cartId })] : [];
    return [...opened, ItemAdded.create({ cartId, sku: command.payload.sku })];
  }
  if (cart.items.length === 0) return [];
  return [CartCheckedOut.create({ cartId, items: cart.items.length })];
}
