import { expect, it } from 'vitest';
import { exampleSource, readmeExample } from '../../core/test/support/services.ts';
import { main } from './readme/orders.ts';

it('the README shows the example verbatim', () => {
  expect(readmeExample('packages/tsyringe/README.md', 'test/readme/orders.ts')).toBe(
    exampleSource('packages/tsyringe', 'test/readme/orders.ts'),
  );
});

it('the README example commits each command when its dispatch ends', async () => {
  expect(await main()).toEqual({
    placed: ['tea pending (0 committed)', 'cup pending (1 committed)'],
    database: ['tea', 'cup'],
  });
});
