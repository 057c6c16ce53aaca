import {
  connectionHealth,
  createHealth,
  createInMemoryBroker,
  createInMemoryOutboxStore,
  createOutboxRelay,
  relayHealth,
} from '@cqrs-ts/core';

const outbox = createInMemoryOutboxStore();
const relay = createOutboxRelay({ store: outbox, publisher: createInMemoryBroker(), pollIntervalMs: 50 });
let databaseUp = true;

const health = createHealth({
  serviceId: 'orders',
  components: [
    // alive but not cycling (no beat two poll intervals after one was due), broker down, old pending events
    relayHealth(relay, { maxOldestPendingAgeMs: 30_000 }),
    connectionHealth('postgres', async () => {
      if (!databaseUp) throw new Error('connect ECONNREFUSED 127.0.0.1:5432');
    }),
  ],
});

relay.start();
while (relay.heartbeat().cycles === 0) await new Promise((resolve) => setImmediate(resolve));
console.log('live:', (await health.live()).status);
console.log('ready:', (await health.ready()).status);

databaseUp = false;
const report = await health.ready(); // application/health+json; @cqrs-ts/http serves it with 503 on fail
console.log('ready:', report.status, '-', report.checks.postgres?.[0]?.output);
console.log('live:', (await health.live()).status); // liveness never looks at dependencies

await relay.stop();
health.close();
