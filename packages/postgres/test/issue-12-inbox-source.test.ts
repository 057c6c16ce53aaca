import { processOnce } from '@cqrs-ts/core';
import { createPostgresInboxStore, migrate } from '@cqrs-ts/postgres';
import { describe, expect, it } from 'vitest';
import { available, connect } from './support.ts';

// Issue 12: CloudEvents identity is source + id. An inbox table made by an earlier version (no source column,
// key (message_id, consumer)) is migrated in place; its marks keep deduplicating and a second source's event
// with a reused id is handled.
describe.skipIf(!available)('issue 12: postgres inbox keyed by source and id', () => {
  it('migrates an inbox table made before the source column', async () => {
    const c = await connect('pg', 'i12');
    const tables = { outbox: `ob_${c.sfx}`, inbox: `ib_${c.sfx}` };
    try {
      await c.pool.query(`CREATE TABLE ${tables.inbox} (message_id TEXT NOT NULL, consumer TEXT NOT NULL,
        processed_at BIGINT NOT NULL, PRIMARY KEY (message_id, consumer))`);
      await c.pool.query(`INSERT INTO ${tables.inbox} VALUES ('order-1', 'billing', 1)`);
      await migrate(c.client, { tables });
      await migrate(c.client, { tables }); // idempotent
      const key = await c.pool.query(
        `SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)
         WHERE i.indrelid = $1::regclass AND i.indisprimary ORDER BY a.attname`,
        [tables.inbox],
      );
      expect(key.rows.map((r) => r.attname)).toEqual(['consumer', 'message_id', 'source']);
      const inbox = createPostgresInboxStore({ client: c.client, tables });
      const mark = (source?: string) =>
        c.tx((tx) =>
          processOnce(inbox, tx, 'order-1', 'billing', (t) => c.recordEffect(t, 'order-1'), source),
        );
      expect((await mark()).status).toBe('duplicate'); // the old mark still counts
      expect((await mark('urn:shop:eu')).status).toBe('processed');
      expect((await mark('urn:shop:us')).status).toBe('processed');
      expect((await mark('urn:shop:eu')).status).toBe('duplicate');
      expect(await c.effects()).toBe(2);
    } finally {
      await c.end(tables.outbox, `${tables.outbox}_archive`, `${tables.outbox}_stream`, tables.inbox);
    }
  });
});
