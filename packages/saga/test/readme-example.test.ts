import { expect, it, vi } from 'vitest';
import { main } from '../examples/place-order.ts';

it('the README example ships one order and rolls the other back cleanly', async () => {
  vi.spyOn(console, 'log').mockImplementation(() => {});
  const result = await main();
  expect(result).toEqual({ shipped: ['o-1'], failedStatus: 'compensated', reservations: 1 });
});
