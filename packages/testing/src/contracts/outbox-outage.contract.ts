/**
 * The outbox contract's outage cases: a broker outage spends no attempt and keeps key order however long it lasts,
 * and rows the relay cannot read are quarantined (dead, with the reason) while the rest flows. Registered by
 * `describeOutboxStoreContract` for each relay mode.
 * @module
 */
import {
  type AnyEvent,
  BrokerError,
  createInMemoryBroker,
  createOutboxRelay,
  defineEvent,
  type OutboxRelay,
} from '@cqrs-ts/core';
import type { MessagePublisher, OutboxMessage, OutboxStore, PublishResult } from '@cqrs-ts/core/spi';
import { describe, expect } from 'vitest';
import type { HarnessTest } from './harness.ts';

/**
 * How {@link OutboxOutageHarness.appendUnreadable} damages rows, as a corrupted table would hold them:
 * `headers` that are not a JSON object, a `payload` that does not decode as the row's content encoding says,
 * a `content-encoding` no relay knows (e.g. `zstd`).
 */
export type OutboxRowDamage = 'headers' | 'payload' | 'content-encoding';

/** The part of the outbox harness the outage cases use. */
export interface OutboxOutageHarness<TTx> {
  store(): OutboxStore<TTx>;
  tx<T>(fn: (tx: TTx) => Promise<T>): Promise<T>;
  /**
   * Appends `events` in one committed transaction, then damages their rows as `damage` says. Without it the
   * quarantine case is skipped.
   */
  appendUnreadable?(events: readonly AnyEvent[], damage: OutboxRowDamage): Promise<void>;
}

const Ticked = defineEvent('outage.ticked', {
  topic: 'ticks',
  key: (p: { k: string; n: number }) => p.k,
}).withPayload<{ k: string; n: number }>();

/** `count` events over `keys` keys; `n` grows with the append order. */
const ticks = (count: number, keys: number, from = 0): AnyEvent[] =>
  Array.from(
    { length: count },
    (_, i) => Ticked.create({ k: `k${(from + i) % keys}`, n: from + i }) as AnyEvent,
  );

/** A broker that answers like an unreachable one while `down` (a `BrokerError`, reason `connection`). */
function switchableBroker() {
  const inner = createInMemoryBroker();
  const received: { k: string; n: number }[] = [];
  inner.subscribe('ticks', (m) => {
    received.push(JSON.parse(new TextDecoder().decode(m.body)) as { k: string; n: number });
  });
  /** `hang`: the next calls that never settle (a client stuck across a reconnect); their signals are kept. */
  const state = { down: false, acceptFirst: -1, hang: 0 };
  const hungSignals: (AbortSignal | undefined)[] = [];
  const unreachable = (): PublishResult => ({
    ok: false,
    error: new BrokerError('connection', 'connection lost'),
  });
  const publisher: MessagePublisher = {
    capabilities: { preservesKeyOrder: true },
    async publish(batch: readonly OutboxMessage[], options?: { readonly signal?: AbortSignal }) {
      if (state.hang > 0) {
        state.hang--;
        hungSignals.push(options?.signal);
        return new Promise<never>(() => {});
      }
      if (state.acceptFirst >= 0) {
        const n = state.acceptFirst;
        state.acceptFirst = -1;
        state.down = true;
        return [...(await inner.publish(batch.slice(0, n))), ...batch.slice(n).map(unreachable)];
      }
      return state.down ? batch.map(unreachable) : inner.publish(batch);
    },
  };
  return { publisher, received, state, hungSignals };
}

/** Every key's `n` values arrive increasing. */
function expectKeyOrder(received: readonly { k: string; n: number }[]): void {
  const last = new Map<string, number>();
  for (const { k, n } of received) {
    expect(n, `key ${k}`).toBeGreaterThan(last.get(k) ?? -1);
    last.set(k, n);
  }
}

async function drain(relay: OutboxRelay, tick: () => void = () => {}): Promise<number> {
  let quarantined = 0;
  for (let i = 0; i < 10_000; i++) {
    const r = await relay.runOnce();
    quarantined += r.quarantined;
    if (r.claimed === 0) return quarantined;
    tick();
  }
  throw new Error('the relay did not drain');
}

/** Registers the outage cases for one relay mode. */
export function describeOutboxOutageCases<TTx>(
  test: HarnessTest<OutboxOutageHarness<TTx>>,
  mode: 'lease' | 'transaction',
): void {
  const when = (h: OutboxOutageHarness<TTx>) =>
    mode === 'lease' || typeof h.store().processLocked === 'function';
  describe('outages', () => {
    test(
      'a broker down for half an hour spends no attempt, kills no row, and the backlog then goes out in key order',
      async (h) => {
        const store = h.store();
        await h.tx((tx) => store.append(tx, ticks(200, 20)));
        const broker = switchableBroker();
        let clock = Date.now();
        const relay = createOutboxRelay({
          store,
          publisher: broker.publisher,
          mode,
          batchSize: 50,
          maxAttempts: 2,
          now: () => clock,
        });
        // lost in the middle of the first batch, then down for 30 minutes of relay time
        broker.state.acceptFirst = 10;
        for (let i = 0; i < 30; i++) {
          await relay.runOnce();
          clock += 60_000;
        }
        expect((await relay.health()).circuit).toBe('open');
        const held = (await store.stats(clock)).backlog;
        expect(held).toBe(190);
        expect((await store.listDeadLetters()).length).toBe(0);
        broker.state.down = false;
        await drain(relay, () => {
          clock += 10;
        });
        expect(broker.received).toHaveLength(200);
        expectKeyOrder(broker.received);
        expect(await relay.health()).toMatchObject({ backlog: 0, dead: 0, circuit: 'closed' });
      },
      { when, timeout: 60_000 },
    );

    test(
      'a publish that never settles is given up after publishTimeoutMs: its signal is aborted, the rows are handed back untouched, the circuit opens, and the relay drains once the broker answers',
      async (h) => {
        const store = h.store();
        await h.tx((tx) => store.append(tx, ticks(100, 10)));
        const broker = switchableBroker();
        let clock = Date.now();
        const relay = createOutboxRelay({
          store,
          publisher: broker.publisher,
          mode,
          batchSize: 50,
          publishTimeoutMs: 100,
          now: () => clock,
        });
        broker.state.hang = 2; // the batch and the first probe
        expect(await relay.runOnce()).toMatchObject({ claimed: 50, published: 0, failed: 0, released: 50 });
        let health = await relay.health();
        expect(health).toMatchObject({ circuit: 'open', backlog: 100, dead: 0 });
        expect(health.lastError).toMatch(/did not settle within 100 ms/);
        clock += 1000;
        expect(await relay.runOnce()).toMatchObject({ claimed: 1, published: 0, released: 1 });
        expect(broker.hungSignals.map((s) => s?.aborted)).toEqual([true, true]);
        clock += 1000;
        await drain(relay, () => {
          clock += 10;
        });
        expect(broker.received).toHaveLength(100);
        expectKeyOrder(broker.received);
        health = await relay.health();
        expect(health).toMatchObject({ backlog: 0, dead: 0, circuit: 'closed' });
        expect((await store.listDeadLetters()).length).toBe(0);
      },
      { when, timeout: 30_000 },
    );

    test(
      'rows with corrupt headers, a corrupt payload and an unknown compression among 10,000 good ones: the three are dead with reasons, the 10,000 go out in key order',
      async (h) => {
        const store = h.store();
        for (let i = 0; i < 5000; i += 1000) await h.tx((tx) => store.append(tx, ticks(1000, 100, i)));
        // the damaged rows share keys with good rows before and after them
        const bad = ticks(3, 100, 5000);
        await h.appendUnreadable!([bad[0]!], 'headers');
        await h.appendUnreadable!([bad[1]!], 'payload');
        await h.appendUnreadable!([bad[2]!], 'content-encoding');
        for (let i = 5003; i < 10_003; i += 1000) await h.tx((tx) => store.append(tx, ticks(1000, 100, i)));
        const broker = switchableBroker();
        const relay = createOutboxRelay({ store, publisher: broker.publisher, mode, batchSize: 500 });
        expect(await drain(relay)).toBe(3);
        expect(broker.received).toHaveLength(10_000);
        expectKeyOrder(broker.received);
        const dead = await store.listDeadLetters();
        expect(dead.map((d) => d.id).sort()).toEqual(bad.map((e) => e.metadata.requestId).sort());
        const reasons = dead.map((d) => d.lastError ?? '').join('\n');
        expect(reasons).toMatch(/unreadable row.*headers/);
        expect(reasons).toMatch(/unreadable row.*does not decode/);
        expect(reasons).toMatch(/unreadable row.*unknown content encoding/);
        const health = await relay.health();
        expect(health).toMatchObject({ backlog: 0, dead: 3, quarantined: 3 });
        expect(health.lastError).toMatch(/unreadable row/);
      },
      { when: (h) => when(h) && typeof h.appendUnreadable === 'function', timeout: 180_000 },
    );
  });
}
