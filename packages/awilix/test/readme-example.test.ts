import { expect, it, vi } from 'vitest';
import { main } from '../examples/orders.ts';

it('the README example commits each command in its own scope, and the nested query sees the pending write', async () => {
  vi.spyOn(console, 'log').mockImplementation(() => {});
  expect(await main()).toEqual({
    placed: ['acme/teax2 (order 1 of the tenant)', 'acme/cupx1 (order 2 of the tenant)'],
    committed: ['acme/teax2', 'acme/cupx1'],
  });
});
