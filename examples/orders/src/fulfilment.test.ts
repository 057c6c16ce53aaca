import { DatabaseSync } from 'node:sqlite';
import { LOG_START } from '@cqrs-ts/core';
import { deciderSpec } from '@cqrs-ts/testing';
import { describe, expect, it } from 'vitest';
import {
  createFulfilmentService,
  decideFulfilment,
  evolveFulfilment,
  FulfilmentRefused,
  FulfilmentStarted,
  initialFulfilment,
  LinePacked,
  OrderShipped,
  PackLine,
  Restock,
  ShipOrder,
  StartFulfilment,
} from './fulfilment.ts';

describe('fulfilment decisions', () => {
  const spec = deciderSpec({
    initialState: initialFulfilment,
    evolve: evolveFulfilment,
    decide: decideFulfilment,
  });
  const started = FulfilmentStarted.create({ orderId: 'o1', skus: ['book', 'pen'] });

  it('packs a line of the order once', async () => {
    await spec
      .given(started)
      .when(PackLine.create({ orderId: 'o1', sku: 'book' }))
      .thenEvents([LinePacked.create({ orderId: 'o1', sku: 'book' })]);
    await spec
      .given(started, LinePacked.create({ orderId: 'o1', sku: 'book' }))
      .when(PackLine.create({ orderId: 'o1', sku: 'book' }))
      .thenNothingHappened();
  });

  it('ships only when every line is packed', async () => {
    await spec
      .given(started)
      .when(ShipOrder.create({ orderId: 'o1' }))
      .thenThrows(/still needs book, pen/);
    await spec
      .given(
        started,
        LinePacked.create({ orderId: 'o1', sku: 'book' }),
        LinePacked.create({ orderId: 'o1', sku: 'pen' }),
      )
      .when(ShipOrder.create({ orderId: 'o1' }))
      .thenEvents(OrderShipped.create({ orderId: 'o1' }));
  });

  it('refuses to change a shipped order', () =>
    spec
      .givenState({ status: 'shipped', skus: ['book'], packed: ['book'] })
      .when(PackLine.create({ orderId: 'o1', sku: 'book' }))
      .thenThrows(FulfilmentRefused));
});

describe('fulfilment on SQLite through the unit of work', () => {
  it('commits each command with its events and stock, and a refused command writes nothing', async () => {
    const db = new DatabaseSync(':memory:');
    const { mediator, eventStore, stock, fulfilments } = createFulfilmentService(db);
    await mediator.send(Restock.create({ sku: 'book', quantity: 1 }));
    await mediator.send(StartFulfilment.create({ orderId: 'o1', skus: ['book', 'pen'] }));
    expect(await mediator.send(PackLine.create({ orderId: 'o1', sku: 'book' }))).toBe(1);
    // no pen in stock: the packed event and the stock change roll back together
    await expect(mediator.send(PackLine.create({ orderId: 'o1', sku: 'pen' }))).rejects.toThrow(
      'pen is out of stock',
    );
    await expect(mediator.send(ShipOrder.create({ orderId: 'o1' }))).rejects.toThrow(FulfilmentRefused);
    await mediator.send(Restock.create({ sku: 'pen', quantity: 2 }));
    expect(await mediator.send(PackLine.create({ orderId: 'o1', sku: 'pen' }))).toBe(2);
    await mediator.send(ShipOrder.create({ orderId: 'o1' }));

    const log = await eventStore.read({ after: LOG_START });
    expect(log.entries.map((e) => `${e.type} ${e.streamId}@${e.streamVersion}`)).toEqual([
      'fulfilment.started fulfilment-o1@1',
      'fulfilment.line-packed fulfilment-o1@2',
      'fulfilment.line-packed fulfilment-o1@3',
      'fulfilment.shipped fulfilment-o1@4',
    ]);
    expect((await fulfilments.load(db, 'o1')).state).toEqual({
      status: 'shipped',
      skus: ['book', 'pen'],
      packed: ['book', 'pen'],
    });
    expect(await stock.load(db, 'book')).toEqual({ id: 'book', state: { onHand: 0 }, version: 2 });
    expect(await stock.load(db, 'pen')).toEqual({ id: 'pen', state: { onHand: 1 }, version: 2 });
  });
});
