/**
 * `stream` suite: the cost per item of consuming a streaming query with `for await`, through `mediator.stream`,
 * against the bare async generator that cqrs-ts runs as the handler. Each operation consumes a whole stream of
 * `N` = 1,000 items; time and allocation are reported per item (`ns_per_op` / `bytes_per_op`, one op = one item).
 */
import { DEFAULT_OP_OPTIONS, OP_NODE_FLAGS, opColumns, runAsyncOpCase } from '../lib/measure.ts';
import type { CaseSpec, Suite } from '../lib/types.ts';
import { checkCount, N } from './stream/count.ts';

const moduleUrl = (file: string): string => new URL(`./stream/${file}`, import.meta.url).href;

const cases: CaseSpec[] = [
  { name: 'generator', module: moduleUrl('generator.ts'), variant: 'generator' },
  { name: 'cqrs-ts stream', module: moduleUrl('cqrs-ts.ts'), variant: 'stream' },
];

export const stream: Suite = {
  name: 'stream',
  description: `for-await over a ${N}-item stream, per item; per process: 1 s warm-up, median of 15 samples of >= 60 ms`,
  columns: opColumns('item'),
  baseline: { case: 'generator', field: 'ns_per_op', label: 'vs generator' },
  notes: [
    `one op is one item: each stream of ${N} items is measured whole (query dispatch, handler start and end included) and divided by ${N}.`,
    'no peer is measured: @nestjs/cqrs and mediatr-ts have no streaming queries; node-cqrs cannot be installed here.',
  ],
  nodeFlags: OP_NODE_FLAGS,
  timeoutMs: 120_000,
  cases,
  run: (spec) =>
    runAsyncOpCase(spec, { ...DEFAULT_OP_OPTIONS, warmupIterations: 50, itemsPerOp: N, check: checkCount }),
};
