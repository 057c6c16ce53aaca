import { AssertionError } from 'node:assert';
import { createEventSourcedRepository, handle } from '@cqrs-ts/core';
import { defineSaga, sagaContext } from '@cqrs-ts/saga';
import { deciderSpec, handlerSpec } from '@cqrs-ts/testing';
import { fails, sagaSpec, succeeds } from '@cqrs-ts/testing/saga';
import { describe, expect, it } from 'vitest';
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
} from './examples/cart-domain.ts';

const rejection = async (p: Promise<unknown>): Promise<Error> => {
  try {
    await p;
  } catch (error) {
    return error as Error;
  }
  throw new Error('expected the specification to fail');
};

describe('decider specification', () => {
  const cart = deciderSpec({ initialState, evolve, decide });
  const opened = CartOpened.create({ cartId: 'c1' });

  it('fails with the difference when other events are produced', async () => {
    const error = await rejection(
      cart
        .given(opened)
        .when(AddItem.create({ cartId: 'c1', sku: 'pen' }))
        .thenEvents(ItemAdded.create({ cartId: 'c1', sku: 'book' })),
    );
    expect(error).toBeInstanceOf(AssertionError);
    expect(error.message).toContain('cart.add-item produced other events than expected');
    expect(error.message).toContain("sku: 'pen'");
    expect(error.message).toContain("sku: 'book'");
    expect((error as AssertionError).expected).toEqual([
      { type: 'cart.item-added', payload: { cartId: 'c1', sku: 'book' } },
    ]);
  });

  it('fails when the command is refused where events were expected, naming the error', async () => {
    const error = await rejection(
      cart
        .givenState({ status: 'checked-out', items: [] })
        .when(AddItem.create({ cartId: 'c1', sku: 'pen' }))
        .thenEvents([]),
    );
    expect(error.message).toBe('cart.add-item was refused: cart c1 is checked out');
    expect(error.cause).toBeInstanceOf(CartClosedError);
  });

  it('fails when nothing is thrown, saying what happened instead', async () => {
    const error = await rejection(
      cart
        .given()
        .when(AddItem.create({ cartId: 'c1', sku: 'pen' }))
        .thenThrows(),
    );
    expect(error.message).toBe(
      'cart.add-item: expected it to throw, but it produced cart.opened, cart.item-added',
    );
  });

  it('fails when another error is thrown', async () => {
    const error = await rejection(
      cart
        .givenState({ status: 'checked-out', items: [] })
        .when(AddItem.create({ cartId: 'c1', sku: 'pen' }))
        .thenThrows(TypeError),
    );
    expect(error.message).toMatch(/expected an instance of TypeError, got .*cart c1 is checked out/);
    await cart
      .givenState({ status: 'checked-out', items: [] })
      .when(AddItem.create({ cartId: 'c1', sku: 'pen' }))
      .thenThrows('CQRS_CONFIGURATION');
    await cart
      .givenState({ status: 'checked-out', items: [] })
      .when(AddItem.create({ cartId: 'c1', sku: 'pen' }))
      .thenThrows(/checked out/);
  });

  it('fails on another state and on events where none were expected', async () => {
    expect(
      (
        await rejection(
          cart
            .given(opened)
            .when(CheckOut.create({ cartId: 'c1' }))
            .thenState(initialState()),
        )
      ).message,
    ).toContain('the state after cart.check-out is not the one expected');
    expect(
      (
        await rejection(
          cart
            .given()
            .when(AddItem.create({ cartId: 'c1', sku: 'pen' }))
            .thenNothingHappened(),
        )
      ).message,
    ).toContain('cart.add-item produced events where none were expected');
  });

  it('is not a thenable, so awaiting a step by mistake does not hang', () => {
    const step = cart.given().when(CheckOut.create({ cartId: 'c1' }));
    expect('then' in step).toBe(false);
  });

  it('refuses a decider without its functions', () => {
    expect(() => deciderSpec({ initialState, evolve } as never)).toThrow(
      'deciderSpec: decide must be a function',
    );
  });
});

describe('handler specification', () => {
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
        handle(
          AddItem,
          async (cmd, ctx) =>
            (await carts.update(ctx, cmd.payload.cartId, (c) => decide(cmd, c))).state.items.length,
        ),
        handle(CheckOut, async (cmd, ctx) => {
          await carts.update(ctx, cmd.payload.cartId, (c) => decide(cmd, c));
          throw new Error('the payment service is down');
        }),
      ],
    };
  });
  const carts = (world: Parameters<Parameters<typeof handlerSpec>[0]>[0]) =>
    createEventSourcedRepository({
      name: 'cart',
      store: world.eventStore,
      events: [CartOpened, ItemAdded, CartCheckedOut],
      initialState,
      evolve,
    });

  it('fails with the difference of the committed events and of the result', async () => {
    const events = await rejection(
      spec
        .when(AddItem.create({ cartId: 'c1', sku: 'pen' }))
        .thenEvents([CartOpened.create({ cartId: 'c1' })]),
    );
    expect(events.message).toContain('cart.add-item committed other events than expected');
    expect(events.message).toContain("sku: 'pen'");
    const result = await rejection(spec.when(AddItem.create({ cartId: 'c1', sku: 'pen' })).thenResult(2));
    expect(result.message).toContain('cart.add-item returned another result than expected');
  });

  it('rolls back a failing command: no event committed, the error checked', async () => {
    await spec
      .given('cart-c1', [CartOpened.create({ cartId: 'c1' }), ItemAdded.create({ cartId: 'c1', sku: 'pen' })])
      .when(CheckOut.create({ cartId: 'c1' }))
      .thenThrows(/payment service is down/);
    const error = await rejection(spec.when(CheckOut.create({ cartId: 'c1' })).thenEvents([]));
    expect(error.message).toBe('cart.check-out failed: the payment service is down');
  });

  it('checks the state an aggregate is left in, and given setups run before the command', async () => {
    let world: Parameters<Parameters<typeof handlerSpec>[0]>[0] | undefined;
    const s = handlerSpec((w) => {
      world = w;
      const repo = carts(w);
      return {
        handlers: [
          handle(
            AddItem,
            async (cmd, ctx) => (await repo.update(ctx, cmd.payload.cartId, (c) => decide(cmd, c))).version,
          ),
        ],
      };
    });
    const given = s.given(async (tx, w) => {
      await carts(w).append(tx, 'c1', [CartOpened.create({ cartId: 'c1' })], { expectedVersion: 0 });
    });
    await given.when(AddItem.create({ cartId: 'c1', sku: 'pen' })).thenResult(2);
    await given
      .when(AddItem.create({ cartId: 'c1', sku: 'pen' }))
      .thenState(carts(world!), 'c1', { status: 'open', items: ['pen'] });
    const error = await rejection(
      given
        .when(AddItem.create({ cartId: 'c1', sku: 'pen' }))
        .thenState(carts(world!), 'c1', { status: 'open', items: [] }),
    );
    expect(error.message).toContain('after cart.add-item, c1 is not in the state expected');
  });

  it('refuses malformed givens', () => {
    expect(() => spec.given(42 as never)).toThrow(TypeError);
    expect(() => handlerSpec(undefined as never)).toThrow(TypeError);
  });
});

describe('saga specification', () => {
  const Ctx = sagaContext<{ orderId: string }>();
  const saga = defineSaga({
    name: 'spec-saga',
    context: Ctx,
    steps: [
      Ctx.step({ id: 'a', act: async () => 'a', compensate: async () => {} }),
      Ctx.step({ id: 'b', act: async () => 'b', compensate: async () => {} }),
      Ctx.step({ id: 'c', act: async () => 'c' }),
    ],
  });

  it('fails with the difference of the compensations that ran', async () => {
    const error = await rejection(
      sagaSpec(saga)
        .given({ c: fails(new Error('boom')) })
        .when({ orderId: 'o' })
        .thenCompensated(['a', 'b']),
    );
    expect(error.message).toContain('saga spec-saga did not end as expected (it ran a, b, c)');
    expect((error as AssertionError).actual).toEqual({ status: 'compensated', compensated: ['b', 'a'] });
  });

  it('fails when the saga completed where a failure was expected, and on another error', async () => {
    const done = await rejection(sagaSpec(saga).when({ orderId: 'o' }).thenOutcome({ error: Error }));
    expect(done.message).toBe('saga spec-saga: expected a failure, but no step failed');
    const other = await rejection(
      sagaSpec(saga)
        .given({ b: fails(new Error('boom')) })
        .when({ orderId: 'o' })
        .thenCompensated(['a'], TypeError),
    );
    expect(other.message).toMatch(/expected an instance of TypeError, got Error: boom/);
  });

  it('reports results, the steps that ran and the context', async () => {
    const run = await sagaSpec(saga)
      .given({ a: succeeds('given a') })
      .when({ orderId: 'o' })
      .thenCompleted({ a: 'given a', b: 'b' });
    expect(run).toMatchObject({
      status: 'completed',
      ran: ['a', 'b', 'c'],
      compensated: [],
      context: { orderId: 'o' },
    });
  });

  it('refuses an unknown step and a non-saga', async () => {
    await expect(sagaSpec(saga).given({ nope: succeeds() }).when({ orderId: 'o' }).run()).rejects.toThrow(
      'has no step "nope"',
    );
    expect(() => sagaSpec({} as never)).toThrow(TypeError);
  });
});
