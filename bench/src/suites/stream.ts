/**
 * `stream` suite: the cost per item of consuming a streaming query with `for await`, through `mediator.stream`,
 * against the bare async generator that cqrs-ts runs as the handler. Each operation consumes a whole stream of
 * `N` = 1,000 items; time and allocation are reported per item (`ns_per_op` / `bytes_per_op`, one op = one item).
 */
import type { AsyncOpCaseModule, CaseSpec, Metrics, Suite } from '../lib/types.ts';
import { checkCount, N } from './stream/count.ts';
import { measureStream } from './stream/measure.ts';

const moduleUrl = (file: string): string => new URL(`./stream/${file}`, import.meta.url).href;

const cases: CaseSpec[] = [
  { name: 'generator', module: moduleUrl('generator.ts'), variant: 'generator' },
  { name: 'cqrs-ts stream', module: moduleUrl('cqrs-ts.ts'), variant: 'stream' },
];

async function run(spec: CaseSpec): Promise<Metrics> {
  const mod = (await import(spec.module)) as AsyncOpCaseModule;
  if (typeof mod.setup !== 'function') throw new Error(`${spec.module} does not export setup(variant)`);
  const { op, close } = await mod.setup(spec.variant);
  try {
    return await measureStream(op, {
      items: N,
      samples: 15,
      sampleMs: 60,
      warmupMs: 1000,
      warmupStreams: 50,
      batchBytes: 8 * 1024 * 1024,
      allocationRounds: 5,
      check: checkCount,
    });
  } finally {
    await close?.();
  }
}

export const stream: Suite = {
  name: 'stream',
  description: `for-await over a ${N}-item stream, per item; per process: 1 s warm-up, median of 15 samples of >= 60 ms`,
  columns: [
    { field: 'ns_per_op', label: 'ns/item', digits: 1 },
    { field: 'spread_pct', label: '±', digits: 1, suffix: '%', json: false },
    { field: 'bytes_per_op', label: 'bytes/item', digits: 0 },
  ],
  baseline: { case: 'generator', field: 'ns_per_op', label: 'vs generator' },
  notes: [
    `one op is one item: each stream of ${N} items is measured whole (query dispatch, handler start and end included) and divided by ${N}.`,
    'no peer is measured: @nestjs/cqrs and mediatr-ts have no streaming queries; node-cqrs cannot be installed here.',
  ],
  nodeFlags: ['--expose-gc', '--min-semi-space-size=16', '--max-semi-space-size=256'],
  timeoutMs: 120_000,
  cases,
  run,
};
