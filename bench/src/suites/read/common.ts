/**
 * The `read` suite's database-independent parts: seeding the log, the hand-written catch-up loop, the same work
 * through the projection runner, the rebuild and the commit-to-read-model latency.
 */
import {
  consistencyToken,
  createProjectionRunner,
  defineEvent,
  defineProjection,
  type EventLog,
  type ProjectionRunner,
} from '@cqrs-ts/core';
import type { OutboxStore, OutboxWakeUp, ProjectionStore } from '@cqrs-ts/core/spi';
import { warmMedian } from '../../lib/samples.ts';

export const OrderPlaced = defineEvent('bench.order-placed').withPayload<{
  orderId: string;
  total: number;
}>();
export const TYPES = [OrderPlaced.type];

/** What each database provides. */
export interface ReadParts<TTx> {
  readonly log: EventLog;
  readonly outbox: OutboxStore<TTx>;
  readonly store: ProjectionStore<TTx>;
  /** BEGIN … COMMIT on the client the projection store uses. */
  tx(fn: (tx: TTx) => Promise<void>): Promise<void>;
  /** The read model's upsert: one row per order, with the same statement in both cases. */
  upsert(tx: TTx, orderId: string, total: number): Promise<void>;
  /** The same upsert for many orders in one statement (totals and counts of one order already summed). */
  upsertMany?(tx: TTx, rows: ReadonlyMap<string, { total: number; n: number }>): Promise<void>;
  /** The raw loop's checkpoint row update. */
  checkpoint(tx: TTx, position: string): Promise<void>;
  /** Empties the read model (and the raw checkpoint). */
  truncate(): Promise<void>;
  /** Rows in the read model. */
  rows(): Promise<number>;
  /** Appends `n` more events fast (bulk SQL), for the rebuild case. */
  bulkSeed?(n: number): Promise<void>;
  /** Wakes the runner on appends (LISTEN/NOTIFY). */
  wakeUp?(): OutboxWakeUp;
  close(): Promise<void>;
}

/** Appends `n` events through the outbox store, 1,000 per transaction. */
export async function seed<TTx>(parts: ReadParts<TTx>, n: number): Promise<void> {
  for (let i = 0; i < n; i += 1000) {
    const events = Array.from({ length: Math.min(1000, n - i) }, (_, k) =>
      OrderPlaced.create({ orderId: `o${i + k}`, total: (i + k) % 100 }),
    );
    await parts.tx((tx) => parts.outbox.append(tx, events));
  }
}

const text = new TextDecoder();

/** The hand-written loop: read a batch (the store's own read, with its gap guard), upsert each, checkpoint, commit. */
export async function rawCatchUp<TTx>(parts: ReadParts<TTx>, batch: number): Promise<number> {
  let after = '0';
  let n = 0;
  for (;;) {
    const b = await parts.log.read({ after, limit: batch, types: TYPES });
    if (b.entries.length === 0 && b.position === after) return n;
    await parts.tx(async (tx) => {
      for (const e of b.entries) {
        const p = JSON.parse(text.decode(e.payload)) as { orderId: string; total: number };
        await parts.upsert(tx, p.orderId, p.total);
      }
      await parts.checkpoint(tx, b.position);
    });
    n += b.entries.length;
    after = b.position;
    // Like the runner's catchUp(): an empty batch that only moved the position ends the run. A filtered read
    // moves to the snapshot horizon, which this loop's own checkpoint commit advances: without this stop it
    // could go on reading empty batches for as long as no other transaction holds the horizon back.
    if (b.entries.length === 0) return n;
  }
}

let runs = 0;

/** The same work through a batch projection and the runner (a new projection name each time: from the start). */
export function projectionRunner<TTx>(
  parts: ReadParts<TTx>,
  batch: number,
  extra: {
    readonly name?: string;
    readonly wakeUp?: OutboxWakeUp;
    readonly pollMs?: number;
    /** Write each batch with `applyBatch` and one multi-row upsert. */
    readonly batched?: boolean;
  } = {},
): ProjectionRunner {
  const upsertMany = parts.upsertMany;
  const projection = defineProjection<TTx>({
    name: extra.name ?? `bench-orders-${process.pid}-${runs++}`,
    events: [OrderPlaced],
    apply: (e, tx) => {
      const p = e.payload as { orderId: string; total: number };
      return parts.upsert(tx, p.orderId, p.total);
    },
    ...(extra.batched === true && upsertMany !== undefined
      ? {
          applyBatch: (items, tx) => {
            const rows = new Map<string, { total: number; n: number }>();
            for (const { event } of items) {
              const p = event.payload as { orderId: string; total: number };
              const row = rows.get(p.orderId);
              if (row === undefined) rows.set(p.orderId, { total: p.total, n: 1 });
              else {
                row.total += p.total;
                row.n++;
              }
            }
            return upsertMany(tx, rows);
          },
        }
      : {}),
    reset: () => parts.truncate(),
  });
  return createProjectionRunner<TTx>({
    log: parts.log,
    store: parts.store,
    projections: [projection],
    batchSize: batch,
    ...(extra.wakeUp !== undefined ? { wakeUp: extra.wakeUp } : {}),
    ...(extra.pollMs !== undefined ? { pollMs: extra.pollMs } : {}),
  });
}

/**
 * Events per second of a catch-up of `events` events, median of `samples` runs from an empty read model, after
 * 1.5 s of the same runs ({@link warmMedian}). One run of 10,000 events is over in about 150 ms: with a single
 * warm-up run, the samples of the runner (more code to compile than the raw loop) were still the slow runs of
 * its tier-up (runs 2 to 4 took 180-290 ms, then 150 ms steadily, on SQLite), so the case measured the JIT.
 */
export async function measureCatchUp<TTx>(
  parts: ReadParts<TTx>,
  kind: 'raw' | 'projection',
  events: number,
  samples = 5,
  batch = 500,
): Promise<number> {
  await seed(parts, events);
  const once = async (): Promise<number> => {
    await parts.truncate();
    const started = performance.now();
    let n: number;
    if (kind === 'raw') n = await rawCatchUp(parts, batch);
    else {
      const runner = projectionRunner(parts, batch);
      const r = await runner.catchUp();
      n = Object.values(r)[0]!;
      await runner.stop();
    }
    const ms = performance.now() - started;
    if (n !== events || (await parts.rows()) !== events)
      throw new Error(
        `catch-up applied ${n} events, read model has ${await parts.rows()}; expected ${events}`,
      );
    return (events / ms) * 1000;
  };
  return warmMedian(once, 1500, samples);
}

/**
 * The hand-written rebuild: empty the read model, then per batch read the log (the store's own read, with its gap
 * guard), sum each order's events from their JSON payloads, write them with the same multi-row upsert as the
 * batch projection, update the checkpoint, commit.
 */
export async function rawRebuild<TTx>(parts: ReadParts<TTx>, batch: number): Promise<number> {
  const upsertMany = parts.upsertMany;
  if (upsertMany === undefined) throw new Error('no multi-row upsert');
  await parts.truncate();
  let after = '0';
  let n = 0;
  for (;;) {
    const b = await parts.log.read({ after, limit: batch, types: TYPES });
    if (b.entries.length === 0 && b.position === after) return n;
    const rows = new Map<string, { total: number; n: number }>();
    for (const e of b.entries) {
      const p = JSON.parse(text.decode(e.payload)) as { orderId: string; total: number };
      const row = rows.get(p.orderId);
      if (row === undefined) rows.set(p.orderId, { total: p.total, n: 1 });
      else {
        row.total += p.total;
        row.n++;
      }
    }
    await parts.tx(async (tx) => {
      await upsertMany(tx, rows);
      await parts.checkpoint(tx, b.position);
    });
    n += b.entries.length;
    after = b.position;
    if (b.entries.length === 0) return n;
  }
}

/**
 * Events per second of an in-place rebuild of a read model over `events` events: through the runner
 * (`rebuild(name, 'in-place')` of a batch projection) or the hand-written {@link rawRebuild}, same batch size.
 */
export async function measureRebuild<TTx>(
  parts: ReadParts<TTx>,
  events: number,
  kind: 'raw' | 'projection' = 'projection',
  batch = 5000,
): Promise<number> {
  if (parts.bulkSeed === undefined) throw new Error('no bulk seed');
  await parts.bulkSeed(events);
  if (kind === 'raw') {
    const started = performance.now();
    const n = await rawRebuild(parts, batch);
    const ms = performance.now() - started;
    if (n !== events || (await parts.rows()) !== events)
      throw new Error(
        `raw rebuild applied ${n} events, read model has ${await parts.rows()}; expected ${events}`,
      );
    return (events / ms) * 1000;
  }
  const runner = projectionRunner(parts, batch, { name: 'bench-rebuild', batched: true });
  const started = performance.now();
  await runner.rebuild('bench-rebuild', 'in-place');
  const ms = performance.now() - started;
  await runner.stop();
  const rows = await parts.rows();
  if (rows !== events) throw new Error(`rebuild left ${rows} rows; expected ${events}`);
  return (events / ms) * 1000;
}

/**
 * p99 ms from a writer's commit to the runner's commit of the read-model change, at `perSecond` events/s (10
 * events per transaction) for `seconds`, the runner woken by `wakeUp` (its poll is 1 s).
 */
export async function measureCommitToReadModel<TTx>(
  parts: ReadParts<TTx>,
  perSecond: number,
  seconds: number,
): Promise<number> {
  if (parts.wakeUp === undefined) throw new Error('no wake-up');
  const runner = projectionRunner(parts, 500, {
    name: 'bench-latency',
    wakeUp: parts.wakeUp(),
    pollMs: 1000,
  });
  runner.start();
  const latencies: number[] = [];
  const waits: Promise<void>[] = [];
  const perTx = 10;
  const interval = (1000 * perTx) / perSecond;
  const until = performance.now() + seconds * 1000;
  let i = 0;
  let next = performance.now();
  try {
    while (performance.now() < until) {
      const events = Array.from({ length: perTx }, () =>
        OrderPlaced.create({ orderId: `l${i++}`, total: 1 }),
      );
      await parts.tx((tx) => parts.outbox.append(tx, events));
      const committed = performance.now();
      waits.push(
        runner.waitFor('bench-latency', consistencyToken(events)).then(() => {
          latencies.push(performance.now() - committed);
        }),
      );
      next += interval;
      const wait = next - performance.now();
      if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
    }
    await Promise.all(waits);
  } finally {
    await runner.stop();
  }
  latencies.sort((a, b) => a - b);
  return latencies[Math.floor(latencies.length * 0.99)]!;
}
