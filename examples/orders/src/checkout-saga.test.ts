import { expect, it } from 'vitest';
import { runCheckoutSagas } from './checkout-saga.ts';

it('completes one checkout through the fallback and rolls the other back in reverse order', async () => {
  const { stock, charges, rolledBack } = await runCheckoutSagas();
  expect(stock).toBe(4);
  expect(charges).toEqual([['o-1', 2500]]);
  expect(rolledBack).toBe('compensated');
});
