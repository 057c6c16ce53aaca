/**
 * A case's time over its baseline's, measured op by op in one process: the two operations alternate (A B, then
 * B A, ...), so a burst of load from the machine (other processes, the database's own fsyncs) falls on both
 * alike. Separate processes measured one after the other, as `us_per_op` is, can differ by 30% on a busy
 * two-core machine with no change in the code; this ratio moves by a few percent.
 */

import { median } from '../../lib/samples.ts';

const now = () => performance.now();

/**
 * Median time of one `op` over the median time of one `base`, after 300 ms of warm-up, over at least 1 s and
 * 200 pairs.
 */
export async function pairedRatio(base: () => Promise<void>, op: () => Promise<void>): Promise<number> {
  const warmEnd = now() + 300;
  while (now() < warmEnd) {
    await base();
    await op();
  }
  const baseTimes: number[] = [];
  const opTimes: number[] = [];
  const timed = async (fn: () => Promise<void>, into: number[]) => {
    const start = now();
    await fn();
    into.push(now() - start);
  };
  const end = now() + 1000;
  for (let i = 0; i < 200 || now() < end; i++) {
    if (i % 2 === 0) {
      await timed(base, baseTimes);
      await timed(op, opTimes);
    } else {
      await timed(op, opTimes);
      await timed(base, baseTimes);
    }
  }
  return median(opTimes) / median(baseTimes);
}
