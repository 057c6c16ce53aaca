import { context } from '@opentelemetry/api';
import { afterEach, expect, it, vi } from 'vitest';
import { main } from '../examples/one-trace.ts';

afterEach(() => context.disable());

it('the README example puts the command, the outbox, the relay, the consumer and the handler in one trace', async () => {
  vi.spyOn(console, 'log').mockImplementation(() => {});
  const { spans, traceIds } = await main();
  expect(spans).toEqual([
    'cqrs.outbox append',
    'cqrs.command shop.place-order',
    'send orders',
    'process orders',
  ]);
  expect(traceIds).toEqual(['4bf92f3577b34da6a3ce929d0e0e4736']);
});
