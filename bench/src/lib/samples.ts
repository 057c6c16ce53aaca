/**
 * Small helpers of the throughput cases: the median, a median of runs after a warm-up, and runs of two sides
 * taken alternately so that load from the rest of the machine falls on both alike.
 */

/** The median of `values` (the mean of the two middle ones when there is an even count). */
export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/**
 * The median of `samples` results of `run`, after `warmMs` of the same runs (at least one). A run over in a few
 * hundred ms, measured once from a cold process, measures the JIT: code with more to compile (the runner, the
 * relay) is still tiering up.
 */
export async function warmMedian(run: () => Promise<number>, warmMs = 1500, samples = 5): Promise<number> {
  const warmUntil = performance.now() + warmMs;
  do await run();
  while (performance.now() < warmUntil);
  const results: number[] = [];
  for (let i = 0; i < samples; i++) results.push(await run());
  return median(results);
}

/**
 * `pairs` pairs of runs of `a` and `b`, one after the other, each side first every other pair; the results of
 * each side in pair order.
 */
export async function alternately<T>(
  pairs: number,
  a: () => Promise<T>,
  b: () => Promise<T>,
): Promise<{ readonly a: T[]; readonly b: T[] }> {
  const out = { a: [] as T[], b: [] as T[] };
  for (let i = 0; i < pairs; i++) {
    if (i % 2 === 0) {
      out.a.push(await a());
      out.b.push(await b());
    } else {
      out.b.push(await b());
      out.a.push(await a());
    }
  }
  return out;
}

/** The resolution of the load generator's latency percentiles (autocannon reports whole milliseconds). */
export const LATENCY_RESOLUTION_MS = 1;

/**
 * `latency` over `base`, both taken at {@link LATENCY_RESOLUTION_MS}: a percentile under the resolution counts as
 * the resolution, so two sub-millisecond p99s compare as equal (1) instead of 0/0, and one under it against 2 ms
 * as 0.5.
 * @throws TypeError for a latency that is not a finite, non-negative number.
 */
export function latencyRatio(latency: number, base: number): number {
  for (const v of [latency, base])
    if (!(Number.isFinite(v) && v >= 0))
      throw new TypeError(`a latency must be a finite number >= 0, got ${v}`);
  return Math.max(latency, LATENCY_RESOLUTION_MS) / Math.max(base, LATENCY_RESOLUTION_MS);
}
