import { processOnce } from '@cqrs-ts/core';
import { createMysqlInboxStore, migrate } from '@cqrs-ts/mysql';
import { describe, expect, it } from 'vitest';
import { available, connect } from './support.ts';

// Issue 12: CloudEvents identity is source + id. An inbox table made by an earlier version (no source column,
// key (message_id, consumer)) is migrated in place; its marks keep deduplicating and a second source's event
// with a reused id is handled.
describe.skipIf(!available)('issue 12: mariadb inbox keyed by source and id', () => {
  it('migrates an inbox table made before the source column and before ids compared byte for byte', async () => {
    const c = await connect('mysql2', 'i12');
    const tables = { outbox: `ob_${c.sfx}`, inbox: `ib_${c.sfx}` };
    try {
      await c.pool.query(`CREATE TABLE ${tables.inbox} (message_id VARCHAR(255) NOT NULL,
        consumer VARCHAR(255) NOT NULL, processed_at BIGINT NOT NULL, PRIMARY KEY (message_id, consumer),
        KEY ${tables.inbox}_processed_at (processed_at)) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4`);
      await c.pool.query(`INSERT INTO ${tables.inbox} VALUES ('order-1', 'billing', 1)`);
      await migrate(c.client, { tables });
      await migrate(c.client, { tables }); // idempotent
      const [key] = await c.pool.query(
        `SELECT column_name AS c FROM information_schema.key_column_usage
         WHERE table_schema = DATABASE() AND table_name = ? AND constraint_name = 'PRIMARY' ORDER BY c`,
        [tables.inbox],
      );
      expect((key as { c: string }[]).map((r) => r.c)).toEqual(['consumer', 'message_id', 'source']);
      const inbox = createMysqlInboxStore({ client: c.client, tables });
      const mark = (source?: string) =>
        c.tx((tx) =>
          processOnce(inbox, tx, 'order-1', 'billing', (t) => c.recordEffect(t, 'order-1'), source),
        );
      expect((await mark()).status).toBe('duplicate'); // the old mark still counts
      expect((await mark('urn:shop:eu')).status).toBe('processed');
      expect((await mark('urn:shop:EU')).status).toBe('processed'); // sources compare byte for byte
      expect((await mark('urn:shop:eu')).status).toBe('duplicate');
      // ids made before compare byte for byte after the migration (the old columns took ORDER-1 for order-1)
      const markId = (id: string) =>
        c.tx((tx) => processOnce(inbox, tx, id, 'billing', (t) => c.recordEffect(t, id)));
      expect((await markId('ORDER-1')).status).toBe('processed');
      expect((await markId('order-1 ')).status).toBe('processed');
      expect((await markId('ORDER-1')).status).toBe('duplicate');
      expect(await c.effects()).toBe(4);
    } finally {
      await c.end(tables.outbox, `${tables.outbox}_archive`, `${tables.outbox}_stream`, tables.inbox);
    }
  });
});
