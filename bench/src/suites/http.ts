/**
 * `http` suite: each framework's hand-written route (zod validation, `mediator.send`, JSON reply) against the
 * same route mounted by its cqrs-ts package, in one run, over loopback; then, on Fastify, the validation failure
 * path (raw 400 vs problem details), SSE (hand-written loop vs the stream route) and idempotent commands (a new
 * key each request vs a replay). See `http/cases.ts` for the load.
 */
import type { CaseSpec, Metrics, Suite } from '../lib/types.ts';
import { SSE_ITEMS } from './http/app.ts';

const module = new URL('./http/cases.ts', import.meta.url).href;
const c = (name: string, variant: string, baseline?: string): CaseSpec =>
  baseline === undefined ? { name, module, variant } : { name, module, variant, baseline };

const cases: CaseSpec[] = [
  ...['fastify', 'hono', 'express'].flatMap((fw) => [
    c(`${fw} raw route`, `${fw}:raw:route`, `${fw} raw route`),
    c(`${fw} cqrs route`, `${fw}:cqrs:route`, `${fw} raw route`),
  ]),
  c('fastify raw error', 'fastify:raw:error', 'fastify raw error'),
  c('fastify problem details', 'fastify:cqrs:error', 'fastify raw error'),
  c('fastify sse raw', 'fastify:raw:sse', 'fastify sse raw'),
  c('fastify sse', 'fastify:cqrs:sse', 'fastify sse raw'),
  c('fastify idempotent first', 'fastify:cqrs:idempotent-first', 'fastify idempotent first'),
  c('fastify idempotent replay', 'fastify:cqrs:idempotent-replay', 'fastify idempotent first'),
];

export const http: Suite = {
  name: 'http',
  description: `HTTP over loopback: hand-written route vs cqrs-ts route per framework (autocannon, 10 connections, 3 s), problem details, SSE (${SSE_ITEMS} events per stream), idempotency`,
  columns: [
    { field: 'per_s', label: 'req/s (events/s for sse)', digits: 0 },
    { field: 'p99_ms', label: 'p99 ms', digits: 2 },
    { field: 'x_paired', label: 'x raw paired', digits: 2 },
    { field: 'p99_x_paired', label: 'p99 x raw paired', digits: 2 },
  ],
  baseline: { case: 'fastify raw route', field: 'per_s', label: 'vs its raw case' },
  notes: [
    'each cqrs case is divided by the raw case of its framework (or path) named in its baseline; the server runs in its own process, the load generator in the case process.',
    "x raw paired: median over 6 pairs of 1 s runs of this case's server over the hand-written one, the two loaded alternately from one process (the ratio to trust on a shared machine: separate processes moved by 40% between runs); p99 x raw paired the same for p99 (whole ms, so it moves by steps; a p99 under 1 ms counts as 1 ms).",
    'targets (issue 16): mounted routes >= 0.9x raw req/s with p99 <= 1.1x; problem details >= 1/1.2 of the raw catch; SSE >= 0.9x raw.',
  ],
  nodeFlags: [],
  timeoutMs: 120_000,
  cases,
  run: async (spec: CaseSpec): Promise<Metrics> => {
    const { run } = (await import(spec.module)) as { run(variant: string): Promise<Metrics> };
    return run(spec.variant);
  },
};
