import { readFileSync } from 'node:fs';
import { expect, it, vi } from 'vitest';
import { main as keepCompensating } from '../examples/keep-compensating.ts';
import { main } from '../examples/place-order.ts';

const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');

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

it('the README shows the outage example as it is in its file', () => {
  const file = readFileSync(new URL('../examples/keep-compensating.ts', import.meta.url), 'utf8');
  const region = file.slice(file.indexOf('// #region readme\n') + 18, file.indexOf('  // #endregion readme'));
  const code = region.replace(/^ {2}/gm, '').trimEnd();
  expect(readme).toContain(`match):\n\n\`\`\`ts\n${code}\n\`\`\`\n`);
});
