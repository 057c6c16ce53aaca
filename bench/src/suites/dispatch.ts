/**
 * `dispatch` suite: the overhead of sending one command (or query) to a trivial async handler and awaiting the
 * result, against an awaited direct call of the same handler function.
 */
import { DEFAULT_OP_OPTIONS, OP_NODE_FLAGS, opColumns, runAsyncOpCase } from '../lib/measure.ts';
import type { CaseSpec, Suite } from '../lib/types.ts';
import { checkPing } from './dispatch/ping.ts';

const moduleUrl = (file: string): string => new URL(`./dispatch/${file}`, import.meta.url).href;

const cases: CaseSpec[] = [
  { name: 'direct', module: moduleUrl('direct.ts'), variant: 'direct' },
  { name: 'cqrs-ts send bare', module: moduleUrl('cqrs-ts.ts'), variant: 'send-bare' },
  { name: 'cqrs-ts send 1 behavior', module: moduleUrl('cqrs-ts.ts'), variant: 'send-1-behavior' },
  { name: 'cqrs-ts send pipeline', module: moduleUrl('cqrs-ts.ts'), variant: 'send-pipeline' },
  { name: 'cqrs-ts query bare', module: moduleUrl('cqrs-ts.ts'), variant: 'query-bare' },
  { name: 'cqrs-ts send bare 100 types', module: moduleUrl('cqrs-ts.ts'), variant: 'send-bare-100-types' },
  { name: 'nestjs send', module: moduleUrl('nestjs.mjs'), variant: 'send' },
  { name: 'nestjs send 1 behavior', module: moduleUrl('nestjs.mjs'), variant: 'send-1-behavior' },
  { name: 'nestjs query', module: moduleUrl('nestjs.mjs'), variant: 'query' },
  { name: 'nestjs send 100 types', module: moduleUrl('nestjs.mjs'), variant: 'send-100-types' },
  { name: 'mediatr-ts send', module: moduleUrl('mediatr-ts.mjs'), variant: 'send' },
  { name: 'mediatr-ts send 1 behavior', module: moduleUrl('mediatr-ts.mjs'), variant: 'send-1-behavior' },
];

export const dispatch: Suite = {
  name: 'dispatch',
  description:
    'awaited send/query of a trivial async handler; per process: 1 s warm-up, median of 15 samples of >= 60 ms',
  columns: opColumns(),
  baseline: { case: 'direct', field: 'ns_per_op', label: 'vs direct' },
  notes: [
    'node-cqrs is left out: it cannot be installed here (it pulls a dependency straight from GitHub).',
    'nestjs send 1 behavior: @nestjs/cqrs has no pipeline; the behavior runs in a CommandBus subclass (see bench/README.md).',
  ],
  nodeFlags: OP_NODE_FLAGS,
  timeoutMs: 120_000,
  cases,
  run: (spec) => runAsyncOpCase(spec, { ...DEFAULT_OP_OPTIONS, check: checkPing }),
};
