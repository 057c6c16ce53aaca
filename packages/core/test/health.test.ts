/**
 * The health model: liveness never touches dependencies; readiness turns red within two poll intervals of a
 * background loop that is alive but no longer cycling (a store or publisher call that never resolves), and on
 * a broker that is down, an old pending event, a projection lag, a consumer that keeps restarting.
 */
import {
  type AnyEvent,
  connectionHealth,
  consumerHealth,
  createHealth,
  createInMemoryBroker,
  createInMemoryEventStore,
  createInMemoryOutboxStore,
  createInMemoryProjectionStore,
  createOutboxRelay,
  createProjectionRunner,
  defineDocumentProjection,
  defineEvent,
  type Health,
  type HealthReport,
  type MessageConsumerHealth,
  projectionHealth,
  relayHealth,
} from '@cqrs-ts/core';
import type { MessagePublisher } from '@cqrs-ts/core/spi';
import { afterEach, describe, expect, it } from 'vitest';
import { waitFor } from './support/services.ts';

const Pinged = defineEvent('health.pinged', { topic: 'pings' }).withPayload<{ n: number }>();
const POLL = 100;
/** Latency of noticing: the probe polls every 5 ms, and timers run late on a loaded machine. */
const SLACK_MS = 150;
const opened: Health[] = [];
const open = (h: Health) => {
  opened.push(h);
  return h;
};
afterEach(() => {
  for (const h of opened.splice(0)) h.close();
});

/** A promise that never settles, and the time it was entered. */
function freezer() {
  const state = { frozen: false, at: 0 };
  const entered = () => {
    state.at = Date.now();
    return new Promise<never>(() => {});
  };
  return { state, entered };
}

/** Waits until readiness fails; returns the report and when it first failed. */
async function untilRed(health: Health): Promise<{ report: HealthReport; at: number }> {
  let report: HealthReport | undefined;
  await waitFor(
    async () => {
      report = await health.ready();
      return report.status === 'fail';
    },
    10_000,
    'readiness red',
  );
  return { report: report!, at: Date.now() };
}

describe('liveness', () => {
  it('reports the process and the event loop only, never a dependency', async () => {
    let touched = 0;
    const health = open(
      createHealth({
        components: [
          connectionHealth('postgres', async () => {
            touched++;
            throw new Error('connect ECONNREFUSED 127.0.0.1:5432');
          }),
        ],
      }),
    );
    const live = await health.live();
    expect(live.status).toBe('pass');
    expect(Object.keys(live.checks).sort()).toEqual(['event-loop', 'process']);
    expect(touched).toBe(0);
    const ready = await health.ready();
    expect(ready.status).toBe('fail');
    expect(ready.checks.postgres![0]).toMatchObject({ status: 'fail', componentType: 'datastore' });
    expect(ready.checks.postgres![0]!.output).toContain('ECONNREFUSED');
  });

  it('fails liveness while the event loop is blocked', async () => {
    const health = open(createHealth({ eventLoop: { warnMs: 20, failMs: 60 } }));
    await health.live(); // resets the window (the sampler skips its first tick after a reset)
    await new Promise((resolve) => setTimeout(resolve, 30));
    const until = Date.now() + 150;
    while (Date.now() < until); // the loop blocked for 150 ms
    await new Promise((resolve) => setTimeout(resolve, 30)); // the sampler's timer records the delay
    const live = await health.live();
    expect(live.checks['event-loop']![0]).toMatchObject({ status: 'fail', observedUnit: 'ms' });
    expect(live.status).toBe('fail');
  });

  it('a check that never answers fails after timeoutMs', async () => {
    const health = open(
      createHealth({
        timeoutMs: 50,
        components: [{ name: 'hung', check: () => new Promise(() => {}) }],
      }),
    );
    const ready = await health.ready();
    expect(ready.checks.hung![0]).toMatchObject({ status: 'fail', output: 'check timed out after 50 ms' });
  });
});

describe('readiness: alive but not cycling turns red within two poll intervals', () => {
  it('outbox relay whose publisher never answers', async () => {
    const store = createInMemoryOutboxStore();
    const freeze = freezer();
    const broker = createInMemoryBroker();
    const publisher: MessagePublisher = {
      capabilities: broker.capabilities,
      publish: (batch, options) => (freeze.state.frozen ? freeze.entered() : broker.publish(batch, options)),
    };
    const relay = createOutboxRelay({ store, publisher, pollIntervalMs: POLL });
    const health = open(createHealth({ components: [relayHealth(relay)] }));
    relay.start();
    try {
      await store.transaction((tx) => store.append(tx, [Pinged.create({ n: 1 }) as AnyEvent]));
      await waitFor(() => relay.heartbeat().cycles >= 3, 5000, 'three cycles');
      expect((await health.ready()).status).toBe('pass');
      freeze.state.frozen = true;
      await store.transaction((tx) => store.append(tx, [Pinged.create({ n: 2 }) as AnyEvent]));
      await waitFor(() => freeze.state.at > 0, 5000, 'publish entered');
      const red = await untilRed(health);
      const elapsed = red.at - freeze.state.at;
      expect(elapsed).toBeLessThanOrEqual(2 * POLL + SLACK_MS);
      expect(red.report.checks['outbox-relay']![0]!.output).toContain('no heartbeat');
    } finally {
      freeze.state.frozen = false;
      void relay.stop();
    }
  });

  it('outbox relay whose store never answers a claim', async () => {
    const inner = createInMemoryOutboxStore();
    const freeze = freezer();
    const store: typeof inner = {
      ...inner,
      claimBatch: (q) => (freeze.state.frozen ? freeze.entered() : inner.claimBatch(q)),
    };
    const relay = createOutboxRelay({ store, publisher: createInMemoryBroker(), pollIntervalMs: POLL });
    const health = open(createHealth({ components: [relayHealth(relay)] }));
    relay.start();
    try {
      await waitFor(() => relay.heartbeat().cycles >= 2, 5000, 'two cycles');
      expect((await health.ready()).status).toBe('pass');
      freeze.state.frozen = true;
      await waitFor(() => freeze.state.at > 0, 5000, 'claim entered');
      const red = await untilRed(health);
      expect(red.at - freeze.state.at).toBeLessThanOrEqual(2 * POLL + SLACK_MS);
      expect(red.report.checks['outbox-relay']![0]!.output).toContain('no heartbeat');
    } finally {
      void relay.stop();
    }
  });

  it('projection runner whose event log never answers a read', async () => {
    const outbox = createInMemoryOutboxStore();
    const inner = createInMemoryEventStore({ outbox });
    const freeze = freezer();
    const log: typeof inner = {
      ...inner,
      read: (q) => (freeze.state.frozen ? freeze.entered() : inner.read(q)),
    };
    const counter = defineDocumentProjection<{ n: number }>({
      name: 'pings',
      events: [Pinged],
      documentId: () => 'all',
      evolve: (doc) => ({ n: (doc?.n ?? 0) + 1 }),
    });
    const runner = createProjectionRunner({
      log,
      store: createInMemoryProjectionStore(),
      projections: [counter],
      pollMs: POLL,
    });
    const health = open(createHealth({ components: [projectionHealth(runner, 'pings')] }));
    runner.start();
    try {
      await waitFor(() => runner.heartbeat('pings').cycles >= 2, 5000, 'two cycles');
      expect((await health.ready()).status).toBe('pass');
      freeze.state.frozen = true;
      await waitFor(() => freeze.state.at > 0, 5000, 'read entered');
      const red = await untilRed(health);
      expect(red.at - freeze.state.at).toBeLessThanOrEqual(2 * POLL + SLACK_MS);
      expect(red.report.checks['projection:pings']![0]!.output).toContain('no heartbeat');
    } finally {
      void runner.stop();
    }
  });
});

describe('readiness: dependencies and thresholds', () => {
  it('relay: broker unreachable (circuit open) fails; an old pending event fails', async () => {
    const store = createInMemoryOutboxStore();
    const down: MessagePublisher = {
      capabilities: { preservesKeyOrder: true },
      publish: async (batch) =>
        batch.map(() => ({
          ok: false as const,
          error: Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:4222'), { code: 'ECONNREFUSED' }),
        })),
    };
    await store.transaction((tx) => store.append(tx, [Pinged.create({ n: 1 }) as AnyEvent]));
    const relay = createOutboxRelay({ store, publisher: down, pollIntervalMs: POLL });
    const health = open(createHealth({ components: [relayHealth(relay)] }));
    relay.start();
    try {
      const red = await untilRed(health);
      expect(red.report.checks['outbox-relay']![0]!.output).toContain('broker unreachable');
    } finally {
      await relay.stop();
    }

    const rejecting: MessagePublisher = {
      capabilities: { preservesKeyOrder: true },
      publish: async (batch) => batch.map(() => ({ ok: false as const, error: new Error('bad message') })),
    };
    const relay2 = createOutboxRelay({ store, publisher: rejecting, pollIntervalMs: POLL });
    const health2 = open(createHealth({ components: [relayHealth(relay2, { maxOldestPendingAgeMs: 30 })] }));
    relay2.start();
    try {
      const red = await untilRed(health2);
      expect(red.report.checks['outbox-relay']![0]!.output).toMatch(/oldest pending event is \d+ ms old/);
    } finally {
      await relay2.stop();
    }
  });

  it('projection: a stopped loop fails; lag over maxLagEvents fails, over half of it warns', async () => {
    const outbox = createInMemoryOutboxStore();
    const log = createInMemoryEventStore({ outbox });
    // an event that keeps failing: the loop keeps cycling (retry backoff) while the lag stays
    const stuck = defineDocumentProjection<{ n: number }>({
      name: 'pings',
      events: [Pinged],
      documentId: () => 'all',
      evolve: () => {
        throw new Error('read model down');
      },
    });
    const runner = createProjectionRunner({
      log,
      store: createInMemoryProjectionStore(),
      projections: [stuck],
      pollMs: POLL,
      retry: { attempts: 1000, backoff: { initialMs: 10, maxMs: 20 } },
    });
    const signal = new AbortController().signal;
    expect(await projectionHealth(runner, 'pings').check(signal)).toMatchObject({
      status: 'fail',
      output: 'loop not running',
    });
    const events = Array.from({ length: 3 }, (_, i) => Pinged.create({ n: i }) as AnyEvent);
    await outbox.transaction((tx) => outbox.append(tx, events));
    runner.start();
    try {
      await waitFor(() => runner.heartbeat('pings').cycles >= 3, 5000, 'three cycles');
      expect(await projectionHealth(runner, 'pings', { maxLagEvents: 2 }).check(signal)).toMatchObject({
        status: 'fail',
        observedValue: 3,
        observedUnit: 'events',
      });
      expect(await projectionHealth(runner, 'pings', { maxLagEvents: 4 }).check(signal)).toMatchObject({
        status: 'warn',
        observedValue: 3,
      });
      expect(await projectionHealth(runner, 'pings', { maxLagEvents: 10 }).check(signal)).toMatchObject({
        status: 'pass',
      });
    } finally {
      await runner.stop();
    }
  });

  it('consumer: not connected fails, paused warns, restarting 3 times within the window fails', async () => {
    let h: MessageConsumerHealth = {
      running: true,
      connected: true,
      inFlight: 0,
      handled: 0,
      duplicates: 0,
      retried: 0,
      deadLettered: 0,
      reconnects: 7,
      lastError: undefined,
      paused: false,
      pausedSince: undefined,
      pauses: 0,
    };
    let t = 1_000_000;
    const check = consumerHealth('consumer:billing', { health: () => h }, { now: () => t });
    const run = () => check.check(new AbortController().signal);
    expect(await run()).toMatchObject({ status: 'pass', observedValue: 0 }); // 7 old reconnects do not count
    h = { ...h, paused: true, pausedSince: t };
    expect(await run()).toMatchObject({ status: 'warn' });
    h = { ...h, paused: false, connected: false, lastError: 'connection closed' };
    expect(await run()).toMatchObject({
      status: 'fail',
      output: 'not connected to the broker: connection closed',
    });
    h = { ...h, connected: true, reconnects: 9 };
    t += 10_000;
    expect(await run()).toMatchObject({ status: 'pass', observedValue: 2 });
    h = { ...h, reconnects: 10 };
    t += 10_000;
    expect(await run()).toMatchObject({ status: 'fail', observedValue: 3 });
    t += 120_000; // the window moved past those restarts
    expect(await run()).toMatchObject({ status: 'pass', observedValue: 0 });
  });
});
