import mysql from 'mysql2/promise';
import { expect, it } from 'vitest';
import { MYSQL_URL, runExample, uniqueSuffix } from '../../core/test/support/services.ts';
import { available } from './support.ts';

it.skipIf(!available)("the README's unit-of-work example runs", async () => {
  const file = 'test/readme/unit-of-work.ts';
  // A database of its own, so the example's fixed table names meet nobody else's.
  const database = `readme_${uniqueSuffix}`;
  const admin = await mysql.createConnection({ uri: MYSQL_URL });
  await admin.query(`CREATE DATABASE ${database}`);
  try {
    const url = new URL(MYSQL_URL);
    url.pathname = `/${database}`;
    const out = await runExample('packages/mysql', file, { DATABASE_URL: url.href });
    expect(out.split('\n')).toEqual([
      'after the commit: o-1',
      "{ orderId: 'o-1' }",
      "{ orderId: 'o-1' }",
      'orders: 1, events: 1',
      '',
    ]);
  } finally {
    await admin.query(`DROP DATABASE ${database}`);
    await admin.end();
  }
});

it.skipIf(!available)("the README's event-log example runs", async () => {
  const file = 'test/readme/event-log.ts';
  const database = `readme_log_${uniqueSuffix}`;
  const admin = await mysql.createConnection({ uri: MYSQL_URL });
  await admin.query(`CREATE DATABASE ${database}`);
  try {
    const url = new URL(MYSQL_URL);
    url.pathname = `/${database}`;
    const out = await runExample('packages/mysql', file, { DATABASE_URL: url.href });
    expect(out.split('\n')).toEqual([
      'items: 2',
      'positions: high-water-mark',
      'cart.item-added cart-c1@1',
      'cart.item-added cart-c1@2',
      '2',
      '',
    ]);
  } finally {
    await admin.query(`DROP DATABASE ${database}`);
    await admin.end();
  }
});

/** Runs a README example in a database of its own (the examples use fixed table names), dropped after. */
async function runInOwnDatabase(file: string, name: string): Promise<string[]> {
  const database = `readme_${name}_${uniqueSuffix}`;
  const admin = await mysql.createConnection({ uri: MYSQL_URL });
  await admin.query(`CREATE DATABASE ${database}`);
  try {
    const url = new URL(MYSQL_URL);
    url.pathname = `/${database}`;
    return (await runExample('packages/mysql', file, { DATABASE_URL: url.href })).split('\n');
  } finally {
    await admin.query(`DROP DATABASE ${database}`);
    await admin.end();
  }
}

it.skipIf(!available)("the README's outbox example runs", async () => {
  expect(await runInOwnDatabase('test/readme/outbox.ts', 'outbox')).toEqual([
    'published orders.order-placed',
    '',
  ]);
});

it.skipIf(!available)("the README's saga store example runs", async () => {
  expect(await runInOwnDatabase('test/readme/saga.ts', 'saga')).toEqual(['o-1: completed', '']);
});
