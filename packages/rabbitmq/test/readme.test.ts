import { resolveRabbitTopology } from '@cqrs-ts/rabbitmq';
import { expect, it } from 'vitest';
import { runExample } from '../../core/test/support/services.ts';
import { cleanup, rabbitAvailable, uniqueName } from './support.ts';

const available = await rabbitAvailable();

it.skipIf(!available)(
  "the README's example runs: relay and direct publish, consumer with its topology",
  async () => {
    const exchange = uniqueName('readme.ex');
    const queue = uniqueName('readme.q');
    try {
      const out = await runExample('packages/rabbitmq', 'test/readme/quick-start.ts', {
        RABBITMQ_EXCHANGE: exchange,
        RABBITMQ_QUEUE: queue,
      });
      expect(out.split('\n')).toEqual([
        'placed o-1, correlation checkout-1',
        'placed o-2, correlation checkout-2',
        '',
      ]);
    } finally {
      const t = resolveRabbitTopology({ exchange, queue, bindings: ['orders.#'] });
      await cleanup({
        queues: [
          queue,
          ...(t.deadLetterQueue ? [t.deadLetterQueue] : []),
          ...t.retryQueues.map((r) => r.queue),
        ],
        exchanges: [exchange],
      });
    }
  },
);
