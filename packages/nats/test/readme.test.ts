import { jetstreamManager } from '@nats-io/jetstream';
import { expect, it } from 'vitest';
import { inOwnPostgresDatabase, postgresReachable, runExample } from '../../core/test/support/services.ts';
import { connectTest, natsAvailable, unique } from './support.ts';

const pgAvailable = await postgresReachable();

it.skipIf(!natsAvailable || !pgAvailable)(
  "the README's example runs: outbox, relay, JetStream, consumer with inbox",
  async () => {
    const stream = unique('README');
    try {
      const out = await inOwnPostgresDatabase('nats', (url) =>
        runExample('packages/nats', 'test/readme/quick-start.ts', { DATABASE_URL: url, NATS_STREAM: stream }),
      );
      expect(out.split('\n')).toEqual(['placed o-1', '']);
    } finally {
      const nc = await connectTest();
      const jsm = await jetstreamManager(nc);
      for (const s of [stream, `${stream}_DLQ`]) await jsm.streams.delete(s).catch(() => undefined);
      await nc.close();
    }
  },
);

it.skipIf(!natsAvailable)(
  "the README's broadcast example runs: one event evicts the caches of two processes",
  async () => {
    const stream = unique('BCAST');
    try {
      const out = await runExample('packages/nats', 'test/readme/broadcast.ts', { NATS_STREAM: stream });
      expect(out.split('\n')).toEqual(['a placed b placed', 'a shipped b shipped', '']);
    } finally {
      const nc = await connectTest();
      await (await jetstreamManager(nc)).streams.delete(stream).catch(() => undefined);
      await nc.close();
    }
  },
);
