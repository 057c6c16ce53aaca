import { expect, it } from 'vitest';
import { main } from './readme/orders.ts';

it('the README example resolves a tenant per dispatch, shared with the nested query', async () => {
  expect(await main()).toEqual({
    placed: ['acme-tea (1 for acme)', 'acme-cup (2 for acme)', 'globex-pot (1 for globex)'],
    receipts: ['acme-tea', 'acme-cup', 'globex-pot'],
  });
});
