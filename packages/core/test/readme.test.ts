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
