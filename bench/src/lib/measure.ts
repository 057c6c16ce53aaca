/**
 * Measures an awaited async operation: time per operation and heap bytes allocated per operation.
 * Runs in the child process of one case, started with `--expose-gc` and a large semi-space (see `run.ts`).
 */
import v8 from 'node:v8';
import { median } from './samples.ts';
import type { AsyncOp, AsyncOpCaseModule, CaseSpec, Column, Metrics } from './types.ts';

export interface AsyncOpOptions {
  /** Timed samples; the median is reported. */
  readonly samples: number;
  /** Target duration of one sample; iterations per sample are calibrated to reach it. */
  readonly sampleMs: number;
  /** Warm-up duration before calibration. */
  readonly warmupMs: number;
  /** Minimum warm-up iterations, whatever the duration. */
  readonly warmupIterations: number;
  /** Heap budget of one allocation batch; kept well below the young generation so no scavenge runs. */
  readonly batchBytes: number;
  /** Allocation rounds; the median is reported. */
  readonly allocationRounds: number;
  /** Checks the operation's result once before measuring; return an error message when it is wrong. */
  readonly check?: (result: unknown) => string | undefined;
  /**
   * Items one `op()` handles (e.g. a whole stream): batches are sized for such heavy operations and every
   * figure is reported per item. @default 1
   */
  readonly itemsPerOp?: number;
}

/** The options the operation-loop suites share: 1 s warm-up, median of 15 samples of >= 60 ms. */
export const DEFAULT_OP_OPTIONS = Object.freeze({
  samples: 15,
  sampleMs: 60,
  warmupMs: 1000,
  warmupIterations: 50_000,
  batchBytes: 8 * 1024 * 1024,
  allocationRounds: 5,
}) satisfies AsyncOpOptions;

/** Columns of the operation-loop suites; `unit` names one operation (`op`, `item`). */
export const opColumns = (unit = 'op'): readonly Column[] => [
  { field: 'ns_per_op', label: `ns/${unit}`, digits: 1 },
  { field: 'spread_pct', label: '±', digits: 1, suffix: '%', json: false },
  { field: 'bytes_per_op', label: `bytes/${unit}`, digits: 0 },
];

/** Node flags of the operation-loop suites: a young generation large enough for GC-free allocation batches. */
export const OP_NODE_FLAGS: readonly string[] = [
  '--expose-gc',
  '--min-semi-space-size=16',
  '--max-semi-space-size=256',
];

/** Batch sizes of a measurement: light operations (a dispatch) or heavy ones (a whole stream). */
interface Granularity {
  readonly firstBatch: number;
  readonly minSample: number;
  readonly probe: number;
  readonly minLarge: number;
  readonly maxLarge: number;
  readonly halvedFloor: number;
  readonly minSmall: number;
  readonly unknownBytes: number;
}

const LIGHT: Granularity = {
  firstBatch: 1_000,
  minSample: 100,
  probe: 1_000,
  minLarge: 1_000,
  maxLarge: 200_000,
  halvedFloor: 200,
  minSmall: 100,
  unknownBytes: 4_096,
};

// A 1,000-item stream allocates ~1,000 times what one dispatch does: batches of streams are ~1,000 times smaller.
const HEAVY: Granularity = {
  firstBatch: 1,
  minSample: 10,
  probe: 10,
  minLarge: 10,
  maxLarge: 2_000,
  halvedFloor: 5,
  minSmall: 2,
  unknownBytes: 1024 * 1024,
};

/** The loop every case runs: `for (...) await op()`. One child process runs one case, so `op` stays monomorphic. */
async function loop(op: AsyncOp, iterations: number): Promise<void> {
  for (let i = 0; i < iterations; i++) await op();
}

function collect(): void {
  const gc = globalThis.gc;
  if (gc === undefined) throw new Error('run the case with --expose-gc');
  gc();
}

async function timeBatch(op: AsyncOp, iterations: number): Promise<number> {
  const start = process.hrtime.bigint();
  await loop(op, iterations);
  return Number(process.hrtime.bigint() - start);
}

interface HeapDelta {
  readonly bytes: number;
  readonly collections: number;
}

/**
 * Heap growth across one batch. A full GC first empties the young generation; a short re-warm batch then
 * runs (a forced full GC can drop optimized code or feedback, which would change what the batch allocates),
 * then the measured batch. `v8.GCProfiler` records every collection between `start()` and `stop()`
 * synchronously, so a batch during which a scavenge ran (its delta would undercount) is detected.
 */
async function heapDelta(op: AsyncOp, iterations: number, rewarm: number): Promise<HeapDelta> {
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

/**
 * Bytes per operation: the slope between a small and a large batch, which cancels the fixed cost of the
 * measurement itself (the `memoryUsage()` result, the loop's own promise). A round where a GC ran, or where a
 * delta is not positive, is redone with half the iterations.
 */
async function bytesPerOp(op: AsyncOp, options: AsyncOpOptions, g: Granularity): Promise<number> {
  const probe = await heapDelta(op, g.probe, 0);
  const estimate = probe.collections === 0 && probe.bytes > 0 ? probe.bytes / g.probe : g.unknownBytes;
  let large = Math.max(
    g.minLarge,
    Math.min(g.maxLarge, Math.floor(options.batchBytes / Math.max(estimate, 8))),
  );
  const results: number[] = [];
  const attempts = options.allocationRounds * 4;
  for (let attempt = 1; results.length < options.allocationRounds && attempt <= attempts; attempt++) {
    const small = Math.max(g.minSmall, Math.floor(large / 5));
    // Re-warm batches allocate a quarter of a large batch, so both fit in the young generation.
    const rewarm = Math.max(g.minSmall, Math.floor(large / 4));
    const a = await heapDelta(op, small, rewarm);
    const b = await heapDelta(op, large, rewarm);
    if (a.collections > 0 || b.collections > 0 || a.bytes <= 0 || b.bytes <= 0) {
      large = Math.max(g.halvedFloor, Math.floor(large / 2));
      continue;
    }
    results.push(Math.max(0, (b.bytes - a.bytes) / (large - small)));
  }
  if (results.length === 0) throw new Error('every allocation batch saw a GC; raise --min-semi-space-size');
  return median(results);
}

/**
 * Warms `op` up, calibrates the iterations per sample, takes the timed samples back to back, then measures
 * allocation. No GC is forced between timed samples: a forced full GC can drop optimized code and pretenuring
 * feedback, which made allocation-heavy cases up to 3x slower in the samples that followed it. Scavenges that
 * happen during a sample are part of the cost of the operation.
 * Returns `ns_per_op` (median), `spread_pct` (median absolute deviation, % of the median), `bytes_per_op`, and
 * `iterations` per sample; with `itemsPerOp`, time and bytes are per item.
 */
export async function measureAsyncOp(op: AsyncOp, options: AsyncOpOptions): Promise<Metrics> {
  const items = options.itemsPerOp ?? 1;
  const g = items > 1 ? HEAVY : LIGHT;
  const result = await op();
  const problem = options.check?.(result);
  if (problem !== undefined) throw new Error(`wrong result: ${problem}`);

  let warmed = 0;
  let batch = g.firstBatch;
  let lastBatch = batch;
  let lastNs = 0;
  const warmStart = performance.now();
  while (performance.now() - warmStart < options.warmupMs || warmed < options.warmupIterations) {
    lastNs = await timeBatch(op, batch);
    lastBatch = batch;
    warmed += batch;
    // Grow the batch until one takes ~10 ms: the last one gives the per-op estimate.
    if (lastNs < 10e6) batch *= 2;
  }
  const estimate = lastNs / lastBatch;
  const iterations = Math.max(g.minSample, Math.ceil((options.sampleMs * 1e6) / Math.max(estimate, 1)));

  const perOp: number[] = [];
  for (let s = 0; s < options.samples; s++) {
    perOp.push((await timeBatch(op, iterations)) / iterations / items);
  }
  const ns = median(perOp);
  const spread = median(perOp.map((v) => Math.abs(v - ns)));
  const bytes = (await bytesPerOp(op, options, g)) / items;
  return { ns_per_op: ns, spread_pct: (spread / ns) * 100, bytes_per_op: bytes, iterations };
}

/** `Suite.run` for operation-loop suites: imports the case module, sets it up, measures, closes. */
export async function runAsyncOpCase(spec: CaseSpec, options: AsyncOpOptions): Promise<Metrics> {
  const mod = (await import(spec.module)) as AsyncOpCaseModule;
  if (typeof mod.setup !== 'function') throw new Error(`${spec.module} does not export setup(variant)`);
  const { op, close } = await mod.setup(spec.variant);
  try {
    return await measureAsyncOp(op, options);
  } finally {
    await close?.();
  }
}
