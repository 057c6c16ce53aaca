import { expect, it } from 'vitest';
import { runExample } from './support/services.ts';

// The README blocks are these files (readmes.test.ts checks the text); here they run.

it("the README's unit-of-work example runs", async () => {
  expect((await runExample('packages/core', 'test/readme/unit-of-work.ts')).split('\n')).toEqual([
    'placed o-1, committed: true',
    'stock reserved for o-1',
    'replayed the stored result',
    'outbox: orders.order-placed, stock.reserved',
    '',
  ]);
});

it("the README's event-log example runs", async () => {
  expect((await runExample('packages/core', 'test/readme/event-log.ts')).split('\n')).toEqual([
    'positions: single-writer',
    '00000000000000000001 cart.item-added cart-c1@1',
    '00000000000000000002 cart.item-added cart-c1@2',
    '00000000000000000003 audit.recorded -@-',
    'audit events: 1',
    'cart-c1 from version 2: 2',
    '',
  ]);
});

it("the README's aggregates example runs", async () => {
  expect((await runExample('packages/core', 'test/readme/aggregates.ts')).split('\n')).toEqual([
    'limit used: 30 (row version 1)',
    'after the commit: withdrawn 30',
    'balance: 70',
    'refused: insufficient funds',
    'acc-1 at version 2: 70',
    '',
  ]);
});

it("the README's projections example runs", async () => {
  expect((await runExample('packages/core', 'test/readme/projections.ts')).split('\n')).toEqual([
    'lag before: 4 events',
    'c1: {"items":2,"total":12} c2: undefined',
    'lag after: 0 events, state running',
    '',
  ]);
});

it("the README's health example runs", async () => {
  expect((await runExample('packages/core', 'test/readme/health.ts')).split('\n')).toEqual([
    'live: pass',
    'ready: pass',
    'ready: fail - Error: connect ECONNREFUSED 127.0.0.1:5432',
    'live: pass',
    '',
  ]);
});

it("the root README's quickstart runs", async () => {
  expect(await runExample('packages/core', 'test/readme/quickstart.ts')).toBe('ord-1 BOOK-1\n');
});

it("the README's first example runs", async () => {
  expect((await runExample('packages/core', 'test/readme/quick.ts')).split('\n').at(-2)).toBe('A-1-u-1');
});

it("the README's smaller examples run", async () => {
  expect((await runExample('packages/core', 'test/readme/tour.ts')).split('\n')).toEqual([
    'placed A-1-u-1',
    'get-order: A-1 x 2, null',
    'timed: billing.bill true',
    'events: receipt o-1, stats o-1',
    'streamed: 0, 1, 2',
    'quotes: la-poste, dhl, manual',
    'built: c-1 acme, executed: A-1-undefined',
    'aggregate: placed, 1 event, version 1',
    'shipped: o-1',
    '',
  ]);
});
