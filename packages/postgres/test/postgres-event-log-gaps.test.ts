import { setTimeout as delay } from 'node:timers/promises';
import { createPostgresEventStore, migrate } from '@cqrs-ts/postgres';
import { describeEventLogGapContract } from '@cqrs-ts/testing/contracts';
import pg from 'pg';
import { PG_URL, uniqueSuffix } from '../../core/test/support/services.ts';
import { available } from './support.ts';

const rollback = new Error('rollback');

describeEventLogGapContract(
  'postgres',
  async () => {
    if (!available) return undefined;
    // 8 writers, the reader and the naive reader each hold a connection
    const pool = new pg.Pool({ connectionString: PG_URL, max: 12 });
    pool.on('error', () => {});
    const tables = { outbox: `gap_${uniqueSuffix}`, inbox: `gapi_${uniqueSuffix}` };
    await migrate(pool, { tables });
    const store = createPostgresEventStore({ client: pool, tables, notifyChannel: false });
    return {
      log: store,
      async write(_writer, batch) {
        const tx = await pool.connect();
        try {
          await tx.query('BEGIN');
          if (batch.streamId === undefined) await store.outbox.append(tx, batch.events);
          else await store.appendToStream(tx, batch.streamId, batch.events, { expectedVersion: 'any' });
          if (batch.commitDelayMs > 0) await delay(batch.commitDelayMs);
          await tx.query(batch.rollback ? 'ROLLBACK' : 'COMMIT');
        } catch (error) {
          await tx.query('ROLLBACK').catch(() => {});
          if (error !== rollback) throw error;
        } finally {
          tx.release();
        }
      },
      async naiveRead(afterSeq, limit) {
        const { rows } = await pool.query(
          `SELECT id, seq FROM ${tables.outbox} WHERE seq > $1 ORDER BY seq LIMIT $2`,
          [afterSeq, limit],
        );
        return rows.map((r: { id: string; seq: string }) => ({ id: r.id, seq: Number(r.seq) }));
      },
      async close() {
        const all = [tables.outbox, `${tables.outbox}_archive`, `${tables.outbox}_stream`, tables.inbox];
        await pool.query(`DROP TABLE IF EXISTS ${all.join(', ')}`);
        await pool.end();
      },
    };
  },
  { report: (f) => console.log(`postgres gap test: ${JSON.stringify(f)}`) },
);
