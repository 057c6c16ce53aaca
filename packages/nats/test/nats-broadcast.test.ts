import {
  createNatsBroadcastConsumer,
  createNatsConsumer,
  createNatsPublisher,
  ensureNatsStream,
  type NatsPublisher,
} from '@cqrs-ts/nats';
import { type BroadcastHarness, createTcpProxy, describeBroadcastContract } from '@cqrs-ts/testing/contracts';
import { jetstreamManager } from '@nats-io/jetstream';
import { connectTest, deleteStreams, NATS_URL, natsAvailable, unique } from './support.ts';

/** The broadcast contract over a fresh stream per test: ordered consumers per instance, a durable group. */
describeBroadcastContract('nats', async (): Promise<BroadcastHarness | undefined> => {
  if (!natsAvailable) return undefined;
  const nc = await connectTest();
  const jsm = await jetstreamManager(nc);
  const [host, port] = NATS_URL.split(':') as [string, string];
  const proxy = await createTcpProxy({ host, port: Number(port) });
  const streams: string[] = [];
  let stream = '';
  let publisher: NatsPublisher | undefined;
  return {
    topic: 'ticks',
    publisher: () => publisher!,
    broadcast: (options) =>
      createNatsBroadcastConsumer({
        ...options,
        servers: `127.0.0.1:${proxy.port}`,
        connectionOptions: { reconnectTimeWait: 100 },
        stream,
      }),
    competing: (options) =>
      createNatsConsumer({ ...options, connection: nc, stream, name: 'group', pullExpiresMs: 1000 }),
    async exists(instance) {
      for await (const c of jsm.consumers.list(stream)) if (c.name.startsWith(`${instance}_`)) return true;
      return false;
    },
    interrupt: async () => proxy.cut(),
    async reset() {
      await publisher?.close();
      stream = unique('BC');
      streams.push(stream, `${stream}_DLQ`);
      await ensureNatsStream({ connection: nc, name: stream, subjects: [`${stream.toLowerCase()}.>`] });
      publisher = await createNatsPublisher({ connection: nc, subjectPrefix: stream.toLowerCase() });
    },
    async close() {
      await publisher?.close();
      await deleteStreams(jsm, ...streams);
      await proxy.close();
      await nc.close();
    },
  };
});
