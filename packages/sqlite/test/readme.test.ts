import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { runExample } from '../../core/test/support/services.ts';

it("the README's unit-of-work example runs", async () => {
  const file = 'test/readme/unit-of-work.ts';
  const dir = mkdtempSync(join(tmpdir(), 'cqrs-readme-'));
  try {
    const out = await runExample('packages/sqlite', file, { DATABASE_FILE: join(dir, 'app.db') });
    expect(out.split('\n')).toEqual([
      'after the commit: o-1',
      "{ orderId: 'o-1' }",
      "{ orderId: 'o-1' }",
      'orders: 1, events: 1',
      '',
    ]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

it("the README's event-log example runs", async () => {
  const file = 'test/readme/event-log.ts';
  const dir = mkdtempSync(join(tmpdir(), 'cqrs-readme-log-'));
  try {
    const out = await runExample('packages/sqlite', file, { DATABASE_FILE: join(dir, 'app.db') });
    expect(out.split('\n')).toEqual([
      'items: 2',
      'positions: single-writer',
      'cart.item-added cart-c1@1',
      'cart.item-added cart-c1@2',
      '2',
      '',
    ]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

/** Runs a README example on a database file of its own. */
async function runOnFile(file: string): Promise<string[]> {
  const dir = mkdtempSync(join(tmpdir(), 'cqrs-readme-'));
  try {
    return (await runExample('packages/sqlite', file, { DATABASE_FILE: join(dir, 'app.db') })).split('\n');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

it("the README's outbox example runs", async () => {
  expect(await runOnFile('test/readme/outbox.ts')).toEqual(['published orders.order-placed', '']);
});

it("the README's saga store example runs", async () => {
  expect(await runOnFile('test/readme/saga.ts')).toEqual(['o-1: completed', '']);
});
