import { expect, it } from 'vitest';
import { exampleSource, readmeExample, runExample } from './support/services.ts';

it('the README shows the unit-of-work example that runs here', async () => {
  expect(readmeExample('packages/core/README.md', 'test/readme/unit-of-work.ts')).toBe(
    exampleSource('packages/core', 'test/readme/unit-of-work.ts'),
  );
  expect((await runExample('packages/core', 'test/readme/unit-of-work.ts')).split('\n')).toEqual([
    'placed o-1, committed: true',
    'stock reserved for o-1',
    'replayed the stored result',
    'outbox: orders.order-placed, stock.reserved',
    '',
  ]);
});

it('the README shows the event-log example that runs here', async () => {
  expect(readmeExample('packages/core/README.md', 'test/readme/event-log.ts')).toBe(
    exampleSource('packages/core', 'test/readme/event-log.ts'),
  );
  expect((await runExample('packages/core', 'test/readme/event-log.ts')).split('\n')).toEqual([
    'positions: single-writer',
    '00000000000000000001 cart.item-added cart-c1@1',
    '00000000000000000002 cart.item-added cart-c1@2',
    '00000000000000000003 audit.recorded -@-',
    'audit events: 1',
    'cart-c1 from version 2: 2',
    '',
  ]);
});

it('the README shows the aggregates example that runs here', async () => {
  expect(readmeExample('packages/core/README.md', 'test/readme/aggregates.ts')).toBe(
    exampleSource('packages/core', 'test/readme/aggregates.ts'),
  );
  expect((await runExample('packages/core', 'test/readme/aggregates.ts')).split('\n')).toEqual([
    'limit used: 30 (row version 1)',
    'after the commit: withdrawn 30',
    'balance: 70',
    'refused: insufficient funds',
    'acc-1 at version 2: 70',
    '',
  ]);
});

it('the README shows the projections example that runs here', async () => {
  expect(readmeExample('packages/core/README.md', 'test/readme/projections.ts')).toBe(
    exampleSource('packages/core', 'test/readme/projections.ts'),
  );
  expect((await runExample('packages/core', 'test/readme/projections.ts')).split('\n')).toEqual([
    'lag before: 4 events',
    'c1: {"items":2,"total":12} c2: undefined',
    'lag after: 0 events, state running',
    '',
  ]);
});
