import {
  createDocumentReader,
  createInMemoryEventStore,
  createInMemoryOutboxStore,
  createInMemoryProjectionStore,
  createProjectionFollower,
  createProjectionRunner,
  defineDocumentProjection,
  defineEvent,
  type LiveItem,
  liveQuery,
} from '@cqrs-ts/core';
import {
  createNatsBroadcastConsumer,
  createNatsConsumer,
  createNatsPublisher,
  ensureNatsStream,
  type NatsPublisher,
} from '@cqrs-ts/nats';
import { type BroadcastHarness, createTcpProxy, describeBroadcastContract } from '@cqrs-ts/testing/contracts';
import { jetstreamManager } from '@nats-io/jetstream';
import { describe, expect, it } from 'vitest';
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

const Bumped = defineEvent('nats.live-bumped', { topic: 'bumps' }).withPayload<{ id: string }>();

describe.skipIf(!natsAvailable)('nats broadcast feed of a projection', () => {
  it('a live query in a process that does not run the projection follows it over JetStream', async () => {
    const nc = await connectTest();
    const jsm = await jetstreamManager(nc);
    const stream = unique('APPLIED');
    const subjectPrefix = stream.toLowerCase();
    await ensureNatsStream({ connection: nc, name: stream, subjects: [`${subjectPrefix}.>`] });
    const publisher = await createNatsPublisher({ connection: nc, subjectPrefix });
    const outbox = createInMemoryOutboxStore();
    const log = createInMemoryEventStore({ outbox });
    const store = createInMemoryProjectionStore();
    const counter = defineDocumentProjection<{ count: number }>({
      name: 'bumps',
      events: [Bumped],
      documentId: (e) => (e.payload as { id: string }).id,
      evolve: (doc) => ({ count: (doc?.count ?? 0) + 1 }),
    });
    // process A runs the projection and publishes what it applied
    const runner = createProjectionRunner({
      log,
      store,
      projections: [counter],
      onApplied: async (events) => void (await publisher.publishEvents(events)),
    });
    // process B follows it
    const follower = createProjectionFollower({ store, projection: 'bumps' });
    const feed = createNatsBroadcastConsumer({
      servers: NATS_URL,
      stream,
      name: 'live',
      handle: follower.handle,
    });
    const docs = createDocumentReader(store, counter);
    const bump = async () => {
      await outbox.transaction((tx) => outbox.append(tx, [Bumped.create({ id: 'o-1' })]));
      await runner.catchUp();
    };
    try {
      await feed.start();
      await bump();
      const live = liveQuery({
        runner: follower,
        projection: 'bumps',
        query: async () => (await docs.get('o-1'))?.count ?? 0,
      })[Symbol.asyncIterator]();
      const items: LiveItem<number>[] = [(await live.next()).value as LiveItem<number>];
      for (let n = 2; n <= 4; n++) {
        await bump();
        items.push((await live.next()).value as LiveItem<number>);
      }
      await live.return(undefined);
      expect(items.map((i) => i.value)).toEqual([1, 2, 3, 4]);
      expect(items.every((item, i) => i === 0 || item.position > items[i - 1]!.position)).toBe(true);
    } finally {
      await feed.stop();
      await runner.stop();
      await publisher.close();
      await deleteStreams(jsm, stream);
      await nc.close();
    }
  });
});
