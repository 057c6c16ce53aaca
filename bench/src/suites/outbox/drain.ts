/**
 * `outbox` suite, the drain after a broker outage: 20,000 events held in a Postgres outbox while NATS was
 * unreachable go out once it is back.
 *
 * - `drain`: the cqrs-ts relay (batch 500, mode auto = transaction) through `createNatsPublisher`. While "down" the
 *   publisher answers every message with what the NATS publisher returns when its connection is lost (a
 *   `BrokerError` of reason `connection`), so the relay's circuit opens and the rows stay untouched; then NATS is
 *   "back" and the clock runs from that moment (the relay's next probe included) until the outbox has no pending
 *   row left.
 * - `raw drain`: the hand-written loop doing the same work with the official clients: per transaction, lock the
 *   next 500 pending rows (`FOR UPDATE SKIP LOCKED`), `js.publish` each (all in flight at once, PubAck awaited,
 *   same subjects, data, `ce-*` headers and `Nats-Msg-Id`), mark them published, commit.
 */
import { BrokerError, createOutboxRelay } from '@cqrs-ts/core';
import { type MessagePublisher, type PublishResult, toBindingHeaders } from '@cqrs-ts/core/spi';
import { createNatsPublisher, ensureNatsStream } from '@cqrs-ts/nats';
import { createPostgresOutboxStore, migrate } from '@cqrs-ts/postgres';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect, headers as natsHeaders } from '@nats-io/transport-node';
import pg from 'pg';
import type { Metrics } from '../../lib/types.ts';
import { benchEvents, suffix } from './common.ts';

const PG_URL = process.env.CQRS_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const NATS_URL = process.env.CQRS_NATS_URL ?? '127.0.0.1:4222';
const ROWS = 20_000;
const BATCH = 500;

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Rows per second of the drain (`relay` or `raw`), or nothing when Postgres or NATS is unreachable. */
export async function drainAfterOutage(kind: 'relay' | 'raw'): Promise<Metrics> {
  const pool = new pg.Pool({ connectionString: PG_URL, max: 4, connectionTimeoutMillis: 2000 });
  pool.on('error', () => {});
  let nc: Awaited<ReturnType<typeof connect>>;
  try {
    await pool.query('SELECT 1');
    nc = await connect({ servers: NATS_URL, timeout: 2000 });
  } catch (error) {
    console.log(`note: postgres or nats unreachable, case skipped (${(error as Error).message})`);
    await pool.end().catch(() => {});
    return {};
  }
  const tables = { outbox: `bench_dob_${suffix}`, inbox: `bench_dib_${suffix}` };
  const stream = `BENCH_DRAIN_${suffix}`;
  const prefix = stream.toLowerCase();
  try {
    await migrate(pool, { tables });
    await ensureNatsStream({ connection: nc, name: stream, subjects: [`${prefix}.>`], storage: 'file' });
    const store = createPostgresOutboxStore({ client: pool, tables, notifyChannel: false });
    for (let i = 0; i < ROWS; i += 1000) {
      const events = benchEvents(1000, i);
      const c = await pool.connect();
      try {
        await c.query('BEGIN');
        await store.append(c, events);
        await c.query('COMMIT');
      } finally {
        c.release();
      }
    }
    await pool.query(`ANALYZE ${tables.outbox}`);
    const pending = async () =>
      Number(
        (await pool.query(`SELECT count(*) AS n FROM ${tables.outbox} WHERE status = 'pending'`)).rows[0].n,
      );

    if (kind === 'raw') {
      const js = (await jetstreamManager(nc)).jetstream();
      const start = performance.now();
      for (;;) {
        const c = await pool.connect();
        let moved = 0;
        try {
          await c.query('BEGIN');
          const r = await c.query(
            `SELECT seq, id, type, topic, key, payload, headers, content_encoding FROM ${tables.outbox}
             WHERE status = 'pending' ORDER BY seq LIMIT $1 FOR UPDATE SKIP LOCKED`,
            [BATCH],
          );
          moved = r.rows.length;
          if (moved > 0) {
            await Promise.all(
              r.rows.map(
                (row: { id: string; topic: string; payload: Buffer; headers: Record<string, string> }) => {
                  const h = natsHeaders();
                  const bound = toBindingHeaders(row.headers, 'ce-');
                  for (const k in bound) h.set(k, bound[k]!);
                  return js.publish(`${prefix}.${row.topic}`, row.payload, { msgID: row.id, headers: h });
                },
              ),
            );
            await c.query(
              `UPDATE ${tables.outbox} SET status = 'published', published_at = $1 WHERE seq = ANY($2::bigint[])`,
              [Date.now(), r.rows.map((row: { seq: string }) => row.seq)],
            );
          }
          await c.query('COMMIT');
        } catch (error) {
          await c.query('ROLLBACK').catch(() => {});
          throw error;
        } finally {
          c.release();
        }
        if (moved === 0) break;
      }
      const seconds = (performance.now() - start) / 1000;
      if ((await pending()) !== 0) throw new Error('raw drain left pending rows');
      return { per_s: ROWS / seconds };
    }

    const publisher = await createNatsPublisher({ connection: nc, subjectPrefix: prefix });
    let down = true;
    let refused = 0;
    let sent = 0;
    const outage = new BrokerError('connection', 'nats: connection is down (bench outage)');
    const gated: MessagePublisher = {
      capabilities: publisher.capabilities,
      publish(batch, options) {
        if (!down) {
          return publisher.publish(batch, options).then((results) => {
            for (const r of results) if (r.ok) sent++;
            return results;
          });
        }
        refused++;
        return Promise.resolve(batch.map((): PublishResult => ({ ok: false, error: outage })));
      },
    };
    const relay = createOutboxRelay({ store, publisher: gated, batchSize: BATCH, pollIntervalMs: 50 });
    relay.start();
    try {
      while (refused === 0) await sleep(5); // the relay met the outage: its circuit is open
      down = false;
      const start = performance.now();
      while (sent < ROWS) await sleep(2);
      while ((await store.stats(Date.now())).backlog > 0) await sleep(2); // the last batch's commit
      const seconds = (performance.now() - start) / 1000;
      const health = await relay.health();
      if (health.dead !== 0) throw new Error(`${health.dead} rows dead after the outage`);
      return { per_s: ROWS / seconds };
    } finally {
      await relay.stop();
      await publisher.close();
    }
  } finally {
    await (await jetstreamManager(nc)).streams.delete(stream).catch(() => undefined);
    await nc.close();
    await pool.query(`DROP TABLE IF EXISTS ${tables.outbox}, ${tables.inbox}`).catch(() => {});
    await pool.end();
  }
}
