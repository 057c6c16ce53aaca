/**
 * `publish` suite: the overhead of publishing one event to three trivial async handlers and awaiting the publish,
 * against awaited direct calls of the same three handler functions, one after the other.
 *
 * Measured like `dispatch` (same loop, options and columns); only the sanity check differs: a publish returns
 * nothing, so the case module reports how often each handler ran, and after the first publish each of the three
 * must have run exactly once and no other handler at all.
 */
import { setTimeout as delay } from 'node:timers/promises';
import { DEFAULT_OP_OPTIONS, measureAsyncOp, OP_NODE_FLAGS, opColumns } from '../lib/measure.ts';
import type { CaseSpec, Metrics, Suite } from '../lib/types.ts';
import type { PublishCase } from './publish/events.ts';
import { checkCalls } from './publish/events.ts';

const moduleUrl = (file: string): string => new URL(`./publish/${file}`, import.meta.url).href;

const direct = moduleUrl('direct.ts');
const cqrs = moduleUrl('cqrs-ts.ts');

const cases: CaseSpec[] = [
  { name: 'direct create and publish', module: direct, variant: 'create-and-publish' },
  { name: 'cqrs-ts create and publish', module: cqrs, variant: 'create-and-publish' },
  { name: 'nestjs create and publish', module: moduleUrl('nestjs.mjs'), variant: 'create-and-publish' },
  {
    name: 'mediatr-ts create and publish',
    module: moduleUrl('mediatr-ts.mjs'),
    variant: 'create-and-publish',
  },
  { name: 'cqrs-ts publish 100 types', module: cqrs, variant: 'publish-100-types' },
  { name: 'nestjs publish 100 types', module: moduleUrl('nestjs.mjs'), variant: 'publish-100-types' },
  { name: 'direct', module: direct, variant: 'direct' },
  { name: 'cqrs-ts publish', module: cqrs, variant: 'publish', baseline: 'direct' },
  { name: 'cqrs-ts publish sequential', module: cqrs, variant: 'publish-sequential', baseline: 'direct' },
];

async function run(spec: CaseSpec): Promise<Metrics> {
  const mod = (await import(spec.module)) as { setup?: (variant: string) => Promise<PublishCase> };
  if (typeof mod.setup !== 'function') throw new Error(`${spec.module} does not export setup(variant)`);
  const { op, calls, close } = await mod.setup(spec.variant);
  try {
    await op();
    // One macrotask later: a fire-and-forget bus (nestjs) has run its handlers to completion by then.
    await delay(0);
    const problem = checkCalls(calls());
    if (problem !== undefined) throw new Error(`wrong result: ${problem}`);
    return await measureAsyncOp(op, DEFAULT_OP_OPTIONS);
  } finally {
    await close?.();
  }
}

export const publish: Suite = {
  name: 'publish',
  description:
    'awaited publish of one event to 3 trivial async handlers, the event created in each operation; per process: 1 s warm-up, median of 15 samples of >= 60 ms',
  columns: opColumns(),
  baseline: { case: 'direct create and publish', field: 'ns_per_op', label: 'vs direct' },
  notes: [
    'node-cqrs is left out: it cannot be installed here (it pulls a dependency straight from GitHub).',
    'nestjs create and publish: the @nestjs/cqrs EventBus is fire-and-forget; `await eventBus.publish(event)` starts the 3 handlers (synchronously, through an RxJS Subject) but does not await their completion, unlike every other case.',
    'direct awaits the 3 handlers one after the other; cqrs-ts publish (default strategy: parallel) and mediatr-ts (Promise.allSettled) start all 3, then await them together.',
    'direct and cqrs-ts publish (sequential) publish one event created before the loop, to isolate the mediator; every other case creates its event in each operation.',
  ],
  nodeFlags: OP_NODE_FLAGS,
  timeoutMs: 120_000,
  cases,
  run,
};
