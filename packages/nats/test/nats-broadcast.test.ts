import {
  createNatsBroadcastConsumer,
  createNatsConsumer,
  createNatsPublisher,
  ensureNatsStream,
  type NatsPublisher,
} from '@cqrs-ts/nats';
import { type BroadcastHarness, describeBroadcastContract } from '@cqrs-ts/testing/contracts';
import { jetstreamManager } from '@nats-io/jetstream';
import { connectTest, deleteStreams, NATS_URL, natsAvailable, unique } from './support.ts';

/** The broadcast contract over a fresh stream per test: ordered consumers per instance, a durable group. */
describeBroadcastContract('nats', async (): Promise<BroadcastHarness | undefined> => {
  if (!natsAvailable) return undefined;
  const nc = await connectTest();
  const jsm = await jetstreamManager(nc);
  const streams: string[] = [];
  let stream = '';
  let publisher: NatsPublisher | undefined;
  return {
    topic: 'ticks',
    publisher: () => publisher!,
    broadcast: (options) => createNatsBroadcastConsumer({ ...options, servers: NATS_URL, stream }),
    competing: (options) =>
      createNatsConsumer({ ...options, connection: nc, stream, name: 'group', pullExpiresMs: 1000 }),
    async exists(instance) {
      for await (const c of jsm.consumers.list(stream)) if (c.name.startsWith(`${instance}_`)) return true;
      return false;
    },
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
      await nc.close();
    },
  };
});
