/**
 * What the `outbox` suite measures on each database, and the measuring loops. A database module (`postgres.ts`,
 * `mariadb.ts`, `sqlite.ts`) provides a {@link OutboxTarget}; the loops here are the same for all of them.
 */
import { type AnyEvent, createInMemoryBroker, createOutboxRelay, defineEvent } from '@cqrs-ts/core';
import type { OutboxStore } from '@cqrs-ts/core/spi';
import { warmMedian } from '../../lib/samples.ts';

export const BenchTicked = defineEvent('bench.ticked', {
  topic: 'bench',
  key: (p: { k: string; n: number }) => p.k,
}).withPayload<{ k: string; n: number }>();

/** `count` events over 100 ordering keys. */
export const benchEvents = (count: number, from = 0): AnyEvent[] =>
  Array.from(
    { length: count },
    (_, i) => BenchTicked.create({ k: `k${(from + i) % 100}`, n: from + i }) as AnyEvent,
  );

/** One database, with fresh tables (unique to this process), dropped by `close`. */
export interface OutboxTarget {
  /** One transaction inserting one business row. */
  bareTxn(): Promise<void>;
  /** The same transaction plus `store.append` of `events` (one event). */
  appendTxn(events: readonly AnyEvent[]): Promise<void>;
  /** Appends `n` events, committed in chunks, with nothing publishing them. */
  seed(n: number): Promise<void>;
  /** One iteration of the hand-written relay loop: claim up to `limit` pending rows and mark them; returns how many. */
  rawClaim(limit: number): Promise<number>;
  /** The store over the same tables, for the cqrs-ts relay. */
  readonly store: OutboxStore<never>;
  close(): Promise<void>;
}

/** What a database module provides; {@link outboxTarget} builds the common cases from it. */
export interface TargetParts<C> {
  readonly store: OutboxStore<C>;
  /** Runs `fn` in one committed transaction; `fn` gets the handle `store.append` takes. */
  tx(fn: (c: C) => Promise<void>): Promise<void>;
  /** Inserts one business row in the transaction. */
  insertBusiness(c: C): Promise<unknown> | unknown;
  /** Runs after seeding (e.g. ANALYZE). */
  afterSeed?(): Promise<void>;
  rawClaim(limit: number): Promise<number>;
  close(): Promise<void>;
}

/** The bare and append transactions and the seeding loop, the same for every database. */
export function outboxTarget<C>(parts: TargetParts<C>): OutboxTarget {
  const { store, tx, insertBusiness } = parts;
  return {
    store: store as OutboxStore<never>,
    bareTxn: () => tx(async (c) => void (await insertBusiness(c))),
    appendTxn: (events) =>
      tx(async (c) => {
        await insertBusiness(c);
        await store.append(c, events);
      }),
    async seed(n) {
      for (let i = 0; i < n; i += 1000) {
        const events = benchEvents(Math.min(1000, n - i), i);
        await tx((c) => store.append(c, events));
      }
      await parts.afterSeed?.();
    },
    rawClaim: parts.rawClaim,
    close: parts.close,
  };
}

const now = () => performance.now();

/**
 * Microseconds per awaited `op`: 300 ms warm-up, then the median of 7 samples of at least 150 ms each.
 */
export async function usPerOp(op: () => Promise<void>): Promise<number> {
  const warmEnd = now() + 300;
  while (now() < warmEnd) await op();
  const samples: number[] = [];
  for (let s = 0; s < 7; s++) {
    const start = now();
    let n = 0;
    while (now() - start < 150) {
      await op();
      n++;
    }
    samples.push(((now() - start) * 1000) / n);
  }
  samples.sort((a, b) => a - b);
  return samples[3]!;
}

/** Rows per second of a drain loop over `rows` seeded rows; `step` returns how many rows it moved (0 = done). */
export async function drainRate(
  target: OutboxTarget,
  rows: number,
  step: () => Promise<number>,
): Promise<number> {
  await target.seed(rows);
  const start = now();
  let moved = 0;
  for (;;) {
    const n = await step();
    if (n === 0) break;
    moved += n;
  }
  const seconds = (now() - start) / 1000;
  if (moved !== rows) throw new Error(`drained ${moved} rows, expected ${rows}`);
  return rows / seconds;
}

/** The cqrs-ts relay driven by `runOnce` (batch size 500) into the in-memory broker; rows per second. */
export async function relayRate(target: OutboxTarget, rows: number): Promise<number> {
  const broker = createInMemoryBroker();
  const relay = createOutboxRelay({ store: target.store, publisher: broker, batchSize: 500 });
  const rate = await drainRate(target, rows, async () => (await relay.runOnce()).published);
  if (broker.delivered !== rows) throw new Error(`broker got ${broker.delivered} messages, expected ${rows}`);
  return rate;
}

/** Metrics of the rows-per-second and per-transaction cases, by case kind. */
export async function measureThroughput(
  target: OutboxTarget,
  kind: 'bare-txn' | 'append' | 'raw-relay-loop' | 'relay',
  rows: number,
): Promise<Record<string, number>> {
  switch (kind) {
    case 'bare-txn':
      return { us_per_op: await usPerOp(() => target.bareTxn()) };
    case 'append': {
      let i = 0;
      return { us_per_op: await usPerOp(() => target.appendTxn(benchEvents(1, i++))) };
    }
    // Drains are measured warm: one drain of 20,000 rows is over in about 0.3 s, and measured once from a cold
    // process the relay was measured mostly while it compiled (sqlite: 0.66x the loop cold, 0.82x warm).
    case 'raw-relay-loop':
      return { per_s: await warmMedian(() => drainRate(target, rows, () => target.rawClaim(500))) };
    case 'relay':
      return { per_s: await warmMedian(() => relayRate(target, rows)) };
  }
}

/** A per-process table-name suffix. */
export const suffix = `${process.pid}_${Math.floor(Math.random() * 1e6)}`;
