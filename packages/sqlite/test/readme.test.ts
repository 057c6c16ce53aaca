import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { exampleSource, readmeExample, runExample } from '../../core/test/support/services.ts';

it('the README shows the unit-of-work example that runs here', async () => {
  const file = 'test/readme/unit-of-work.ts';
  expect(readmeExample('packages/sqlite/README.md', file)).toBe(exampleSource('packages/sqlite', file));
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

it('the README shows the event-log example that runs here', async () => {
  const file = 'test/readme/event-log.ts';
  expect(readmeExample('packages/sqlite/README.md', file)).toBe(exampleSource('packages/sqlite', file));
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
