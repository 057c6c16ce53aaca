import { expect, it, vi } from 'vitest';
import { main } from '../examples/metrics.ts';

it('the README example serves /metrics with the dispatch histogram and the outbox backlog', async () => {
  vi.spyOn(console, 'log').mockImplementation(() => {});
  expect(await main()).toEqual([
    'cqrs_dispatch_duration_seconds_count{message_type="orders.place-order",kind="command",outcome="ok"} 1',
    'cqrs_outbox_backlog{relay="orders"} 0',
  ]);
});
