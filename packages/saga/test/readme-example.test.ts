import { expect, it, vi } from 'vitest';
import { main as keepCompensating } from '../examples/keep-compensating.ts';
import { main } from '../examples/place-order.ts';
import { main as watchProgress } from '../examples/watch-progress.ts';

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

it('the README progress example follows a saga to its end and resumes after a sequence', async () => {
  vi.spyOn(console, 'log').mockImplementation(() => {});
  const { live, resumed } = await watchProgress();
  expect(live.filter((l) => l.includes(' act '))).toEqual(['1 act reserve', '2 act charge']);
  expect(live.at(-1)).toBe('2 completed');
  expect(resumed).toEqual(['2 act charge', '2 completed']);
});
