import { expect, it, vi } from 'vitest';
import { main as keepCompensating } from '../examples/keep-compensating.ts';
import { main } from '../examples/place-order.ts';

it('the README example ships one order and rolls the other back cleanly', async () => {
  vi.spyOn(console, 'log').mockImplementation(() => {});
  const result = await main();
  expect(result).toEqual({ shipped: ['o-1'], failedStatus: 'compensated', reservations: 1 });
});

it('the README outage example refunds once the service is back, with no operator', async () => {
  vi.spyOn(console, 'log').mockImplementation(() => {});
  expect(await keepCompensating()).toEqual({
    firstPass: 'compensation_failed',
    retried: true,
    refunds: 1,
    health: { needsOperator: 0, retrying: 0, active: 0 },
  });
});
