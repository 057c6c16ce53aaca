/**
 * `console` suite: the operator console's outbox panel data (what its page fetches on every refresh) through
 * `console.fetch`, against hand-written prepared statements returning the same JSON, on SQLite. See
 * `console/cases.ts` for the data.
 */
import type { CaseSpec, Metrics, Suite } from '../lib/types.ts';

const module = new URL('./console/cases.ts', import.meta.url).href;

const cases: CaseSpec[] = [
  { name: 'console outbox raw', module, variant: 'raw' },
  { name: 'console outbox panel cold', module, variant: 'console-cold' },
  { name: 'console outbox panel', module, variant: 'console' },
];

export const console: Suite = {
  name: 'console',
  description:
    'console outbox panel data on SQLite (20,000 published over 15 min, 500 pending, 50 dead): /api/outbox + /api/outbox/dead-letters vs the same queries hand-written',
  columns: [
    { field: 'per_s', label: 'panel loads/s', digits: 0 },
    { field: 'us_per_op', label: 'µs/load', digits: 1 },
  ],
  baseline: { case: 'console outbox raw', field: 'per_s', label: 'vs raw' },
  notes: [
    'one load = both requests of the panel, concurrently. raw: the same three queries as prepared statements (throughput by GROUP BY over the 15 windows) and the same JSON, every load.',
    'cold: a new console per load, counting all 15 windows each time (its portable conditional-sum query); panel: one console, settled minutes counted once, so a refresh counts only the current window.',
  ],
  nodeFlags: [],
  timeoutMs: 120_000,
  cases,
  run: async (spec: CaseSpec): Promise<Metrics> => {
    const { run } = (await import(spec.module)) as { run(variant: string): Promise<Metrics> };
    return run(spec.variant);
  },
};
