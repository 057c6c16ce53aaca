import {
  createRabbitBroadcastConsumer,
  createRabbitConsumer,
  createRabbitPublisher,
  type RabbitPublisher,
} from '@cqrs-ts/rabbitmq';
import { type BroadcastHarness, createTcpProxy, describeBroadcastContract } from '@cqrs-ts/testing/contracts';
import { cleanup, RABBIT_URL, rabbitAvailable, rawChannel, uniqueName } from './support.ts';

const available = await rabbitAvailable();

/** The broadcast contract over a fresh exchange per test: an exclusive queue per instance, a shared queue competing. */
describeBroadcastContract('rabbitmq', async (): Promise<BroadcastHarness | undefined> => {
  if (!available) return undefined;
  const raw = await rawChannel();
  const target = new URL(RABBIT_URL);
  const proxy = await createTcpProxy({ host: target.hostname, port: Number(target.port || 5672) });
  const viaProxy = new URL(RABBIT_URL);
  viaProxy.host = `127.0.0.1:${proxy.port}`;
  const exchanges: string[] = [];
  const queues: string[] = [];
  let exchange = '';
  let queue = '';
  let publisher: RabbitPublisher | undefined;
  return {
    topic: 'ticks',
    publisher: () => publisher!,
    broadcast: (options) =>
      createRabbitBroadcastConsumer({
        ...options,
        url: viaProxy.href,
        reconnect: { initialMs: 50, maxMs: 200 },
        exchange,
      }),
    competing: (options) =>
      createRabbitConsumer({
        ...options,
        url: RABBIT_URL,
        exchange,
        queue,
        bindings: ['ticks'],
        retry: false,
        deadLetter: false,
      }),
    async exists(instance) {
      // a passive declare on a fresh channel: 405 (locked: another connection's exclusive queue) or 404
      const ch = await raw.conn.createChannel();
      ch.on('error', () => {});
      try {
        await ch.checkQueue(instance);
        return true;
      } catch (error) {
        return (error as { code?: number }).code === 405;
      } finally {
        await ch.close().catch(() => {});
      }
    },
    interrupt: async () => proxy.cut(),
    async reset() {
      await publisher?.close();
      exchange = uniqueName('bx');
      queue = uniqueName('bq');
      exchanges.push(exchange);
      queues.push(queue);
      publisher = createRabbitPublisher({ url: RABBIT_URL, exchange });
    },
    async close() {
      await publisher?.close();
      await raw.close();
      await proxy.close();
      await cleanup({ queues, exchanges });
    },
  };
});
