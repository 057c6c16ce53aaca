/**
 * The relay through broker outages and unreadable rows, on the in-memory store with a fake clock: a broker that is
 * down opens the circuit (no attempt counted, nothing dead, order kept, however long), probes find it back, held
 * rows go out at once; a row that cannot be read is quarantined (dead with the reason) and the rest flows.
 */
import {
  type AnyEvent,
  BrokerError,
  ConfigurationError,
  CqrsError,
  createInMemoryBroker,
  createInMemoryOutboxStore,
  createOutboxRelay,
  defineEvent,
  isUnavailableError,
  StorageError,
} from '@cqrs-ts/core';
import type { MessagePublisher, OutboxMessage, OutboxRecord, PublishResult } from '@cqrs-ts/core/spi';
import { describe, expect, it } from 'vitest';
import { waitFor } from './support/services.ts';

const Ticked = defineEvent('outage.ticked', {
  topic: 'ticks',
  key: (p: { k: string; n: number }) => p.k,
}).withPayload<{ k: string; n: number }>();

/** `count` events over `keys` keys, numbered per key. */
function ticks(count: number, keys = 5, from = 0): AnyEvent[] {
  return Array.from(
    { length: count },
    (_, i) => Ticked.create({ k: `k${(from + i) % keys}`, n: Math.floor((from + i) / keys) }) as AnyEvent,
  );
}

const refused = () =>
  Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:4222'), { code: 'ECONNREFUSED' });

const brokerDown = () => new BrokerError('connection', 'connection lost before the ack');

/**
 * A broker whose reachability the test switches: while `down`, every publish fails as an unreachable broker does;
 * `acceptFirst` lets the first n messages of the next call through before it goes down (a mid-batch outage).
 */
function switchableBroker() {
  const inner = createInMemoryBroker();
  const received: { k: string; n: number; id: string }[] = [];
  inner.subscribe('*', (m) => {
    const p = JSON.parse(new TextDecoder().decode(m.body)) as { k: string; n: number };
    received.push({ ...p, id: m.id });
  });
  const calls: number[] = [];
  const state = { down: false, acceptFirst: -1, thrown: false };
  const publisher: MessagePublisher = {
    capabilities: { preservesKeyOrder: true },
    async publish(batch: readonly OutboxMessage[]): Promise<readonly PublishResult[]> {
      calls.push(batch.length);
      if (state.acceptFirst >= 0) {
        const n = state.acceptFirst;
        state.acceptFirst = -1;
        state.down = true;
        const ok = await inner.publish(batch.slice(0, n));
        return [...ok, ...batch.slice(n).map(() => ({ ok: false as const, error: brokerDown() }))];
      }
      if (state.down) {
        if (state.thrown) throw refused();
        return batch.map(() => ({ ok: false, error: brokerDown() }));
      }
      return inner.publish(batch);
    },
  };
  return { publisher, received, calls, state };
}

function perKeyInOrder(received: readonly { k: string; n: number }[]): boolean {
  const last = new Map<string, number>();
  for (const r of received) {
    if (r.n !== (last.get(r.k) ?? -1) + 1) return false;
    last.set(r.k, r.n);
  }
  return true;
}

async function seeded(count: number) {
  let t = 1_000_000;
  const clock = {
    now: () => t,
    advance(ms: number) {
      t += ms;
    },
  };
  const store = createInMemoryOutboxStore({ now: clock.now });
  const tx = store.begin();
  await store.append(tx, ticks(count));
  tx.commit();
  return { store, clock };
}

describe('relay through a broker outage', () => {
  it('an hour-long outage spends no attempt, kills no row, and the backlog goes out in key order at once', async () => {
    const { store, clock } = await seeded(50);
    const broker = switchableBroker();
    const relay = createOutboxRelay({
      store,
      publisher: broker.publisher,
      batchSize: 20,
      maxAttempts: 3,
      now: clock.now,
    });
    broker.state.down = true;
    for (let i = 0; i < 2000; i++) {
      await relay.runOnce();
      clock.advance(1900); // an hour in all
    }
    expect(
      store.records().every((r) => r.status === 'pending' && r.attempts === 0 && r.lastError === null),
    ).toBe(true);
    expect((await relay.health()).circuit).toBe('open');
    expect((await relay.health()).unavailableSince).toBeGreaterThan(0);
    // no new backoff was written: every row is due now
    expect(store.records().every((r) => r.nextAttemptAt <= clock.now())).toBe(true);

    broker.state.down = false;
    clock.advance(1000);
    const probe = await relay.runOnce();
    expect(probe).toMatchObject({ claimed: 1, published: 1 });
    expect((await relay.health()).circuit).toBe('closed');
    // full batches right after the probe, without waiting for any backoff
    while ((await relay.runOnce()).claimed > 0);
    expect(broker.received).toHaveLength(50);
    expect(perKeyInOrder(broker.received)).toBe(true);
    const health = await relay.health();
    expect(health).toMatchObject({ backlog: 0, dead: 0, circuit: 'closed', unavailableSince: undefined });
    expect(health.lastError).toContain('connection lost');
  });

  it('a broker lost in the middle of a batch: the rows it took are published, the rest are handed back untouched', async () => {
    const { store, clock } = await seeded(20);
    const broker = switchableBroker();
    const relay = createOutboxRelay({
      store,
      publisher: broker.publisher,
      batchSize: 20,
      maxAttempts: 1,
      now: clock.now,
    });
    broker.state.acceptFirst = 7;
    const r = await relay.runOnce();
    expect(r).toMatchObject({ claimed: 20, published: 7, failed: 0, released: 13 });
    const rows = store.records();
    expect(rows.filter((x) => x.status === 'published')).toHaveLength(7);
    expect(
      rows.filter((x) => x.status === 'pending').every((x) => x.attempts === 0 && x.claimedBy === null),
    ).toBe(true);
    broker.state.down = false;
    clock.advance(5000);
    while ((await relay.runOnce()).claimed > 0) clock.advance(10);
    expect(broker.received).toHaveLength(20);
    expect(perKeyInOrder(broker.received)).toBe(true);
    expect(rows.every((x) => x.status !== 'dead')).toBe(true);
  });

  it('a publisher that throws a connection error opens the circuit too', async () => {
    const { store, clock } = await seeded(10);
    const broker = switchableBroker();
    broker.state.down = true;
    broker.state.thrown = true;
    const relay = createOutboxRelay({ store, publisher: broker.publisher, maxAttempts: 1, now: clock.now });
    expect(await relay.runOnce()).toMatchObject({ claimed: 10, failed: 0, released: 10 });
    expect((await relay.health()).circuit).toBe('open');
    expect(store.records().every((r) => r.status === 'pending' && r.attempts === 0)).toBe(true);
  });

  it('while open it publishes nothing; probes carry one row, first after probeIntervalMs, then at doubling intervals up to the cap', async () => {
    const { store, clock } = await seeded(10);
    const broker = switchableBroker();
    const relay = createOutboxRelay({
      store,
      publisher: broker.publisher,
      now: clock.now,
      circuit: { probeIntervalMs: 100, maxProbeIntervalMs: 400 },
    });
    broker.state.down = true;
    await relay.runOnce(); // opens
    expect(broker.calls).toEqual([10]);
    const probeAt: number[] = [];
    const start = clock.now();
    for (let i = 0; i < 200; i++) {
      clock.advance(10);
      const before = broker.calls.length;
      await relay.runOnce();
      if (broker.calls.length > before) probeAt.push(clock.now() - start);
    }
    expect(broker.calls.slice(1).every((n) => n === 1)).toBe(true);
    const gaps = probeAt.map((t, i) => t - (i === 0 ? 0 : probeAt[i - 1]!));
    expect(gaps.slice(0, 4)).toEqual([100, 200, 400, 400]);
  });

  it('message-level failures still count and go dead after maxAttempts; the circuit stays closed', async () => {
    const { store, clock } = await seeded(1);
    const inner = createInMemoryBroker();
    inner.failWhen(() => true);
    const relay = createOutboxRelay({ store, publisher: inner, maxAttempts: 2, now: clock.now });
    expect(await relay.runOnce()).toMatchObject({ failed: 1 });
    clock.advance(60_000);
    expect(await relay.runOnce()).toMatchObject({ failed: 1 });
    expect(store.records()[0]!.status).toBe('dead');
    expect((await relay.health()).circuit).toBe('closed');
  });

  it('the background loop pauses while the broker is down and drains by itself when it is back', async () => {
    const store = createInMemoryOutboxStore();
    const broker = switchableBroker();
    const relay = createOutboxRelay({
      store,
      publisher: broker.publisher,
      pollIntervalMs: 20,
      maxAttempts: 1,
      circuit: { probeIntervalMs: 10, maxProbeIntervalMs: 30 },
    });
    broker.state.down = true;
    const tx = store.begin();
    await store.append(tx, ticks(30));
    tx.commit();
    relay.start();
    try {
      await waitFor(async () => (await relay.health()).circuit !== 'closed', 5000, 'the circuit to open');
      await waitFor(() => broker.calls.length >= 5, 5000, 'a few probes');
      expect(store.records().every((r) => r.status === 'pending' && r.attempts === 0)).toBe(true);
      broker.state.down = false;
      await waitFor(() => broker.received.length === 30, 5000, 'the backlog to drain');
      expect(perKeyInOrder(broker.received)).toBe(true);
      expect((await relay.health()).circuit).toBe('closed');
    } finally {
      await relay.stop();
    }
  });

  it('a publisher that reports the broker back (onAvailable) gets a probe at once, not at the next probe time', async () => {
    const { store } = await seeded(3);
    const broker = switchableBroker();
    const listeners = new Set<() => void>();
    const publisher: MessagePublisher = {
      ...broker.publisher,
      publish: (batch, options) => broker.publisher.publish(batch, options),
      onAvailable(listener) {
        listeners.add(listener);
        return () => listeners.delete(listener);
      },
    };
    broker.state.down = true;
    const relay = createOutboxRelay({
      store,
      publisher,
      circuit: { probeIntervalMs: 60_000, maxProbeIntervalMs: 60_000 },
    });
    relay.start();
    try {
      await waitFor(async () => (await relay.health()).circuit === 'open', 5000, 'the circuit to open');
      expect(listeners.size).toBe(1);
      broker.state.down = false;
      for (const listener of listeners) listener();
      await waitFor(() => broker.received.length === 3, 5000, 'the rows published after the report');
      expect((await relay.health()).circuit).toBe('closed');
    } finally {
      await relay.stop();
    }
    expect(listeners.size).toBe(0); // stop() removed its listener
  });

  it('stop() ends a relay that is waiting for its next probe', async () => {
    const { store } = await seeded(3);
    const broker = switchableBroker();
    broker.state.down = true;
    const relay = createOutboxRelay({
      store,
      publisher: broker.publisher,
      circuit: { probeIntervalMs: 60_000, maxProbeIntervalMs: 60_000 },
    });
    relay.start();
    await waitFor(async () => (await relay.health()).circuit === 'open', 5000, 'the circuit to open');
    const t = Date.now();
    await relay.stop();
    expect(Date.now() - t).toBeLessThan(2000);
  });

  it('a custom isUnavailable decides what pauses publishing', async () => {
    const { store, clock } = await seeded(2);
    const inner = createInMemoryBroker();
    inner.failWhen(() => true); // plain Error: message-level by default
    const relay = createOutboxRelay({
      store,
      publisher: inner,
      maxAttempts: 1,
      now: clock.now,
      circuit: { isUnavailable: (e) => (e as Error).message.startsWith('injected') },
    });
    expect(await relay.runOnce()).toMatchObject({ failed: 0, released: 2 });
    expect((await relay.health()).circuit).toBe('open');
  });

  it('a failure of scope none (skipped, cancelled) hands the row back without an attempt; scope setup pauses', async () => {
    const { store, clock } = await seeded(2);
    let error: BrokerError = new BrokerError('skipped', 'not sent: an earlier message failed');
    const publisher: MessagePublisher = {
      capabilities: { preservesKeyOrder: false },
      publish: async (batch) => batch.map(() => ({ ok: false, error })),
    };
    const relay = createOutboxRelay({ store, publisher, maxAttempts: 1, now: clock.now });
    expect(await relay.runOnce()).toMatchObject({ failed: 0, released: 2 });
    expect((await relay.health()).circuit).toBe('closed');
    error = new BrokerError('topology', 'stream exists with other subjects');
    expect(await relay.runOnce()).toMatchObject({ failed: 0, released: 2 });
    expect((await relay.health()).circuit).toBe('open');
    expect(store.records().every((r) => r.status === 'pending' && r.attempts === 0)).toBe(true);
  });

  it('refuses bad circuit options at construction', () => {
    const store = createInMemoryOutboxStore();
    const publisher = createInMemoryBroker();
    for (const circuit of [
      { probeIntervalMs: 0 },
      { probeIntervalMs: Number.NaN },
      { probeIntervalMs: 500, maxProbeIntervalMs: 100 },
      { isUnavailable: 'yes' as unknown as () => boolean },
    ]) {
      expect(() => createOutboxRelay({ store, publisher, circuit })).toThrow(ConfigurationError);
    }
  });
});

describe('relay quarantine of unreadable rows', () => {
  /** Appends a hand-made record (what a corrupted database row looks like to the store). */
  function corrupt(
    store: ReturnType<typeof createInMemoryOutboxStore>,
    patch: Partial<OutboxRecord>,
    key: string,
  ) {
    const base = store.records()[0]!;
    const tx = store.begin();
    tx.append([
      { ...base, id: crypto.randomUUID(), key, seq: 0, status: 'pending', ...patch } as OutboxRecord,
    ]);
    tx.commit();
  }

  it('rows with bad headers, a bad payload and an unknown compression go dead with the reason; the rest flows in key order', async () => {
    const store = createInMemoryOutboxStore();
    const tx = store.begin();
    await store.append(tx, ticks(10, 2));
    tx.commit();
    corrupt(store, { headers: 'not an object' as unknown as Record<string, string> }, 'k0');
    corrupt(store, { contentEncoding: 'gzip', payload: new Uint8Array([1, 2, 3]) }, 'k1');
    corrupt(store, { contentEncoding: 'zstd' as 'gzip' }, 'k0');
    const tx2 = store.begin();
    await store.append(tx2, ticks(10, 2, 10));
    tx2.commit();
    const broker = switchableBroker();
    const relay = createOutboxRelay({ store, publisher: broker.publisher, batchSize: 4, maxAttempts: 5 });
    let quarantined = 0;
    for (;;) {
      const r = await relay.runOnce();
      quarantined += r.quarantined;
      if (r.claimed === 0) break;
    }
    expect(quarantined).toBe(3);
    expect(broker.received).toHaveLength(20);
    expect(perKeyInOrder(broker.received)).toBe(true);
    const dead = await store.listDeadLetters();
    expect(dead.map((d) => d.lastError)).toEqual([
      expect.stringMatching(/unreadable row.*headers are not a JSON object/),
      expect.stringMatching(/unreadable row.*does not decode as gzip/),
      expect.stringMatching(/unreadable row.*unknown content encoding "zstd"/),
    ]);
    const health = await relay.health();
    expect(health).toMatchObject({ dead: 3, quarantined: 3, backlog: 0, circuit: 'closed' });
    expect(health.lastError).toMatch(/unreadable row/);
    expect(health.lastErrorAt).toBeGreaterThan(0);
  });

  it('header values that are not strings, and a payload that is not bytes, are unreadable too', async () => {
    const store = createInMemoryOutboxStore();
    const tx = store.begin();
    await store.append(tx, ticks(1));
    tx.commit();
    corrupt(store, { headers: { id: 5 } as unknown as Record<string, string> }, 'a');
    corrupt(store, { headers: [] as unknown as Record<string, string> }, 'b');
    corrupt(store, { payload: 'text' as unknown as Uint8Array }, 'c');
    const relay = createOutboxRelay({ store, publisher: createInMemoryBroker() });
    expect(await relay.runOnce()).toMatchObject({ claimed: 4, published: 1, quarantined: 3 });
  });
});

describe('isUnavailableError', () => {
  it('is true for unreachable destinations and dependencies', () => {
    expect(isUnavailableError(refused())).toBe(true);
    expect(isUnavailableError(new StorageError('connection', 'pool: connection refused'))).toBe(true);
    expect(isUnavailableError(new StorageError('timeout', 'statement timeout'))).toBe(true);
    expect(isUnavailableError(brokerDown())).toBe(true);
    expect(isUnavailableError(new Error('publish failed', { cause: refused() }))).toBe(true);
    expect(isUnavailableError(new AggregateError([new Error('x'), refused()]))).toBe(true);
    expect(isUnavailableError(new CqrsError('CQRS_CIRCUIT_OPEN', 'circuit "payments" is open'))).toBe(true);
  });

  it('is false for errors about the message or the code', () => {
    expect(isUnavailableError(new Error('boom'))).toBe(false);
    expect(isUnavailableError(new StorageError('deadlock', 'deadlock detected'))).toBe(false);
    expect(isUnavailableError(new StorageError('unique-violation', 'duplicate key'))).toBe(false);
    expect(
      isUnavailableError(Object.assign(new CqrsError('CQRS_BROKER', 'too big'), { reason: 'invalid' })),
    ).toBe(false);
    expect(isUnavailableError(undefined)).toBe(false);
    expect(isUnavailableError('ECONNREFUSED')).toBe(false);
    const cyclic = new Error('a') as Error & { cause?: unknown };
    cyclic.cause = new Error('b', { cause: cyclic });
    expect(isUnavailableError(cyclic)).toBe(false);
  });
});
