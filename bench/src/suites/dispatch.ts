/**
 * `dispatch` suite: the cost of sending one command (or query) to a trivial async handler and awaiting the
 * result. Every case creates its message in each operation, as applications do (`Ping.create(payload)` for
 * cqrs-ts, `new Command(payload)` for the peers and the `direct` floors), except the pair `direct` /
 * `cqrs-ts send bare`, which send one message created before the loop to isolate the mediator.
 */
import { DEFAULT_OP_OPTIONS, OP_NODE_FLAGS, opColumns, runAsyncOpCase } from '../lib/measure.ts';
import type { CaseSpec, Suite } from '../lib/types.ts';
import { checkPing } from './dispatch/ping.ts';

const moduleUrl = (file: string): string => new URL(`./dispatch/${file}`, import.meta.url).href;
const direct = moduleUrl('direct.ts');
const cqrs = moduleUrl('cqrs-ts.ts');
const nest = moduleUrl('nestjs.mjs');
const mediatr = moduleUrl('mediatr-ts.mjs');
const awilix = moduleUrl('awilix.ts');

const cases: CaseSpec[] = [
  { name: 'direct create and call', module: direct, variant: 'create-and-call' },
  { name: 'cqrs-ts create and send', module: cqrs, variant: 'create-and-send' },
  { name: 'nestjs create and send', module: nest, variant: 'create-and-send' },
  { name: 'mediatr-ts create and send', module: mediatr, variant: 'create-and-send' },
  { name: 'cqrs-ts create message', module: cqrs, variant: 'create-message' },
  {
    name: 'cqrs-ts create and send, frozen',
    module: cqrs,
    variant: 'create-and-send',
    env: { CQRS_FREEZE_MESSAGES: '1' },
  },
  { name: 'cqrs-ts send recommended pipeline', module: cqrs, variant: 'recommended-pipeline' },
  { name: 'direct 100 types round-robin', module: direct, variant: 'round-robin' },
  {
    name: 'cqrs-ts send 100 types round-robin',
    module: cqrs,
    variant: 'round-robin-100',
    baseline: 'direct 100 types round-robin',
  },
  {
    name: 'direct create with metadata and call',
    module: direct,
    variant: 'create-with-metadata-and-call',
  },
  { name: 'direct', module: direct, variant: 'direct' },
  {
    name: 'direct in AsyncLocalStorage.run',
    module: direct,
    variant: 'direct-async-context',
    baseline: 'direct',
  },
  { name: 'cqrs-ts send bare', module: cqrs, variant: 'send-bare', baseline: 'direct' },
  {
    name: 'cqrs-ts send bare, traced',
    module: cqrs,
    variant: 'send-bare-traced',
    baseline: 'cqrs-ts send bare',
  },
  { name: 'cqrs-ts send 1 behavior', module: cqrs, variant: 'send-1-behavior' },
  { name: 'cqrs-ts send pipeline', module: cqrs, variant: 'send-pipeline' },
  { name: 'cqrs-ts query bare', module: cqrs, variant: 'query-bare' },
  { name: 'cqrs-ts send bare 100 types', module: cqrs, variant: 'send-bare-100-types' },
  { name: 'nestjs send 1 behavior', module: nest, variant: 'send-1-behavior' },
  { name: 'nestjs query', module: nest, variant: 'query' },
  { name: 'nestjs send 100 types', module: nest, variant: 'send-100-types' },
  { name: 'mediatr-ts send 1 behavior', module: mediatr, variant: 'send-1-behavior' },
  { name: 'awilix scope by hand', module: awilix, variant: 'by-hand' },
  {
    name: 'cqrs-ts send awilix scope',
    module: awilix,
    variant: 'mediator',
    baseline: 'awilix scope by hand',
  },
];

export const dispatch: Suite = {
  name: 'dispatch',
  description:
    'awaited send/query of a trivial async handler, the message created in each operation; per process: 1 s warm-up, median of 15 samples of >= 60 ms',
  columns: opColumns(),
  baseline: { case: 'direct create and call', field: 'ns_per_op', label: 'vs direct' },
  notes: [
    'node-cqrs is left out: it cannot be installed here (it pulls a dependency straight from GitHub).',
    'nestjs send 1 behavior: @nestjs/cqrs has no pipeline; the behavior runs in a CommandBus subclass (see bench/README.md).',
  ],
  nodeFlags: OP_NODE_FLAGS,
  timeoutMs: 120_000,
  cases,
  run: (spec) => runAsyncOpCase(spec, { ...DEFAULT_OP_OPTIONS, check: checkPing }),
};
