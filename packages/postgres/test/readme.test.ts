import { expect, it } from 'vitest';
import { inOwnPostgresDatabase, runExample } from '../../core/test/support/services.ts';
import { available } from './support.ts';

it.skipIf(!available)("the README's unit-of-work example runs", async () => {
  const file = 'test/readme/unit-of-work.ts';
  // A database of its own, so the example's fixed table names meet nobody else's.
  const out = await inOwnPostgresDatabase('uow', (url) =>
    runExample('packages/postgres', file, { DATABASE_URL: url }),
  );
  expect(out.split('\n')).toEqual([
    'after the commit: o-1',
    "{ orderId: 'o-1' }",
    "{ orderId: 'o-1' }",
    'orders: 1, events: 1',
    '',
  ]);
});

it.skipIf(!available)("the README's event-log example runs", async () => {
  const file = 'test/readme/event-log.ts';
  const out = await inOwnPostgresDatabase('log', (url) =>
    runExample('packages/postgres', file, { DATABASE_URL: url }),
  );
  expect(out.split('\n')).toEqual([
    'items: 2',
    'positions: snapshot',
    'cart.item-added cart-c1@1',
    'cart.item-added cart-c1@2',
    '2',
    '',
  ]);
});

/** Runs a README example in a database of its own (the examples use fixed table names), dropped after. */
async function runInOwnDatabase(file: string, name: string): Promise<string[]> {
  return (
    await inOwnPostgresDatabase(name, (url) => runExample('packages/postgres', file, { DATABASE_URL: url }))
  ).split('\n');
}

it.skipIf(!available)("the README's outbox example runs", async () => {
  expect(await runInOwnDatabase('test/readme/outbox.ts', 'outbox')).toEqual(['published orders', '']);
});

it.skipIf(!available)("the README's saga store example runs", async () => {
  expect(await runInOwnDatabase('test/readme/saga.ts', 'saga')).toEqual(['o-1: completed', '']);
});
