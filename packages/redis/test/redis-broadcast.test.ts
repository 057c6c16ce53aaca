import {
  createRedisBroadcastConsumer,
  createRedisStreamsConsumer,
  createRedisStreamsPublisher,
  type RedisStreamsPublisher,
} from '@cqrs-ts/redis';
import { type BroadcastHarness, createTcpProxy, describeBroadcastContract } from '@cqrs-ts/testing/contracts';
import { deleteKeys, keyPrefix, newRedis, REDIS_URL, redisAvailable } from './support.ts';

const available = await redisAvailable();

/** The broadcast contract over a fresh stream per test: XREAD per instance, a consumer group competing. */
describeBroadcastContract('redis', async (): Promise<BroadcastHarness | undefined> => {
  if (!available) return undefined;
  const redis = newRedis();
  const target = new URL(REDIS_URL);
  const proxy = await createTcpProxy({ host: target.hostname, port: Number(target.port || 6379) });
  const root = keyPrefix('broadcast');
  let run = 0;
  let stream = '';
  let publisher: RedisStreamsPublisher | undefined;
  return {
    topic: 'ticks',
    publisher: () => publisher!,
    broadcast: (options) =>
      createRedisBroadcastConsumer({
        ...options,
        url: `redis://127.0.0.1:${proxy.port}`,
        streams: [stream],
        blockMs: 200,
      }),
    competing: ({ concurrency, ...processor }) =>
      createRedisStreamsConsumer({
        redis,
        streams: [stream],
        group: 'group',
        blockMs: 200,
        ...(concurrency !== undefined ? { concurrency } : {}),
        processor: { ...processor, name: 'group' },
      }),
    async exists(instance) {
      const clients = String(await redis.call('CLIENT', 'LIST'));
      return clients.split('\n').some((line) => line.includes(` name=${instance} `));
    },
    interrupt: async () => proxy.cut(),
    async reset() {
      await publisher?.close();
      const prefix = `${root}${++run}:`;
      stream = `${prefix}ticks`;
      publisher = createRedisStreamsPublisher({ redis, streamPrefix: prefix });
    },
    async close() {
      await publisher?.close();
      await deleteKeys(redis, root);
      await proxy.close();
      redis.disconnect();
    },
  };
});
