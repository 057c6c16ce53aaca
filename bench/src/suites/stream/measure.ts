/**
 * Measurement of the stream suite: the method of `lib/measure.ts` (warm-up, calibrated samples, median and median
 * absolute deviation; heap slope between two GC-free batches), applied to an operation that consumes a whole
 * stream of `items` items, with batch sizes in streams rather than in single operations, and every figure divided
 * by `items`. `lib/measure.ts` cannot be reused as is: its allocation batches are at least 1,000 operations, which
 * for a 1,000-item stream would be far more than the young generation holds.
 */
import v8 from 'node:v8';
import type { AsyncOp, Metrics } from '../../lib/types.ts';

export interface StreamOptions {
  /** Items per stream (per `op()`); every metric is divided by it. */
  readonly items: number;
  readonly samples: number;
  readonly sampleMs: number;
  readonly warmupMs: number;
  /** Minimum warm-up streams, whatever the duration. */
  readonly warmupStreams: number;
  /** Heap budget of one allocation batch; kept well below the young generation so no scavenge runs. */
  readonly batchBytes: number;
  readonly allocationRounds: number;
  readonly check?: (result: unknown) => string | undefined;
}

async function loop(op: AsyncOp, iterations: number): Promise<void> {
  for (let i = 0; i < iterations; i++) await op();
}

function collect(): void {
  const gc = globalThis.gc;
  if (gc === undefined) throw new Error('run the case with --expose-gc');
  gc();
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

async function timeBatch(op: AsyncOp, iterations: number): Promise<number> {
  const start = process.hrtime.bigint();
  await loop(op, iterations);
  return Number(process.hrtime.bigint() - start);
}

/** Heap growth across one batch of streams, and the collections that ran during it (see `lib/measure.ts`). */
async function heapDelta(
  op: AsyncOp,
  iterations: number,
  rewarm: number,
): Promise<{ bytes: number; collections: number }> {
  collect();
  await loop(op, rewarm);
  const profiler = new v8.GCProfiler();
  profiler.start();
  const before = process.memoryUsage().heapUsed;
  await loop(op, iterations);
  const after = process.memoryUsage().heapUsed;
  const collections = profiler.stop()?.statistics.length ?? 0;
  return { bytes: after - before, collections };
}

/** Bytes per stream: the slope between a batch of n and one of n/5 streams, median of the rounds. */
async function bytesPerStream(op: AsyncOp, options: StreamOptions): Promise<number> {
  const probe = await heapDelta(op, 10, 0);
  const estimate = probe.collections === 0 && probe.bytes > 0 ? probe.bytes / 10 : 1024 * 1024;
  let large = Math.max(10, Math.min(2_000, Math.floor(options.batchBytes / Math.max(estimate, 8))));
  const results: number[] = [];
  const attempts = options.allocationRounds * 4;
  for (let attempt = 1; results.length < options.allocationRounds && attempt <= attempts; attempt++) {
    const small = Math.max(2, Math.floor(large / 5));
    const rewarm = Math.max(2, Math.floor(large / 4));
    const a = await heapDelta(op, small, rewarm);
    const b = await heapDelta(op, large, rewarm);
    if (a.collections > 0 || b.collections > 0 || a.bytes <= 0 || b.bytes <= 0) {
      large = Math.max(5, Math.floor(large / 2));
      continue;
    }
    results.push(Math.max(0, (b.bytes - a.bytes) / (large - small)));
  }
  if (results.length === 0) throw new Error('every allocation batch saw a GC; raise --min-semi-space-size');
  return median(results);
}

/**
 * Warms up, calibrates the streams per sample, takes the timed samples back to back, then measures allocation.
 * Returns `ns_per_op` and `bytes_per_op` per item (one "op" of this suite is one item), `spread_pct`, and
 * `iterations` (streams per sample).
 */
export async function measureStream(op: AsyncOp, options: StreamOptions): Promise<Metrics> {
  const result = await op();
  const problem = options.check?.(result);
  if (problem !== undefined) throw new Error(`wrong result: ${problem}`);

  let warmed = 0;
  let batch = 1;
  let lastBatch = batch;
  let lastNs = 0;
  const warmStart = performance.now();
  while (performance.now() - warmStart < options.warmupMs || warmed < options.warmupStreams) {
    lastNs = await timeBatch(op, batch);
    lastBatch = batch;
    warmed += batch;
    if (lastNs < 10e6) batch *= 2;
  }
  const estimate = lastNs / lastBatch;
  const iterations = Math.max(10, Math.ceil((options.sampleMs * 1e6) / Math.max(estimate, 1)));

  const perItem: number[] = [];
  for (let s = 0; s < options.samples; s++) {
    perItem.push((await timeBatch(op, iterations)) / iterations / options.items);
  }
  const ns = median(perItem);
  const spread = median(perItem.map((v) => Math.abs(v - ns)));
  const bytes = (await bytesPerStream(op, options)) / options.items;
  return { ns_per_op: ns, spread_pct: (spread / ns) * 100, bytes_per_op: bytes, iterations };
}
