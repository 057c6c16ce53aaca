import { expect, it, vi } from 'vitest';
import { main } from '../examples/payments.ts';

it('the README example opens the shared circuit after three failures, refuses at once, then closes', async () => {
  vi.spyOn(console, 'log').mockImplementation(() => {});
  expect(await main()).toEqual({
    refusals: ['provider failed', 'provider failed', 'provider failed', 'refused at once'],
    providerCalls: 4, // three failures and the trial call; nothing while the circuit was open
    state: 'closed',
  });
});
