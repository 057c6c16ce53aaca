import {
  type AnyEvent,
  consistencyToken,
  createOutboxRelay,
  createProjectionRunner,
  defineEvent,
  defineProjection,
} from '@cqrs-ts/core';
import {
  createPostgresEventStore,
  createPostgresProjectionStore,
  createPostgresWakeUp,
  migrate,
  type PostgresClient,
} from '@cqrs-ts/postgres';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { PG_URL, uniqueSuffix, waitFor } from '../../core/test/support/services.ts';
import { available } from './support.ts';

const Noted = defineEvent('test.horizon-noted').withPayload<{ n: number }>();

/** A pool and the outbox, inbox and projection tables of one test, named `<prefix>_<table>_<suffix>`. */
async function tablesFor(prefix: string, max: number) {
  const pool = new pg.Pool({ connectionString: PG_URL, max });
  pool.on('error', () => {});
  const name = (table: string) => `${prefix}_${table}_${uniqueSuffix}`;
  const tables = { outbox: name('ob'), inbox: name('ib') };
  const projectionTables = {
    projection: name('pj'),
    projectionDocument: name('pd'),
    projectionParked: name('pk'),
  };
  await migrate(pool, { tables: { ...tables, ...projectionTables } });
  return {
    pool,
    tables,
    projectionTables,
    /** Drops the tables and ends the pool. */
    async drop() {
      await pool.query(
        `DROP TABLE IF EXISTS ${[tables.outbox, `${tables.outbox}_archive`, `${tables.outbox}_stream`, tables.inbox, ...Object.values(projectionTables)].join(', ')}`,
      );
      await pool.end();
    },
  };
}

describe.skipIf(!available)('postgres projection runner and the snapshot horizon', () => {
  it('applies events an older open transaction held back as soon as it ends, with no wake-up and no poll', async () => {
    const { pool, tables, projectionTables, drop } = await tablesFor('hzh', 6);
    const channel = `hz_${uniqueSuffix}`;
    const store = createPostgresEventStore({ client: pool, tables, notifyChannel: channel });
    const seen: number[] = [];
    let heldReads = 0;
    let sawHeld!: () => void;
    const held = new Promise<void>((resolve) => {
      sawHeld = resolve;
    });
    const runner = createProjectionRunner({
      log: {
        ...store,
        read: async (request) => {
          const batch = await store.read(request);
          // three reads found them held back: more than the start and the commit's wake-up account for
          if (batch.held && ++heldReads === 3) sawHeld();
          return batch;
        },
      },
      store: createPostgresProjectionStore({ client: pool, tables: projectionTables }),
      projections: [
        defineProjection<unknown>({
          name: 'horizon',
          events: [Noted],
          apply: (e) => {
            seen.push((e.payload as { n: number }).n);
          },
        }),
      ],
      pollMs: 3_600_000, // never: only the wake-up and the horizon re-check move it
      wakeUp: createPostgresWakeUp({
        channel,
        connect: async () => {
          const c = new pg.Client({ connectionString: PG_URL });
          await c.connect();
          return c;
        },
      }),
    });
    const holder = await pool.connect();
    try {
      // An older transaction with an id of its own, open across the append: the append's rows are past the horizon.
      await holder.query('BEGIN');
      await holder.query('SELECT pg_current_xact_id()');
      runner.start();
      const events = [Noted.create({ n: 1 }) as AnyEvent];
      const writer = await pool.connect();
      try {
        await writer.query('BEGIN');
        await store.outbox.append(writer, events);
        await writer.query('COMMIT'); // notifies: the runner reads, finds them held back
      } finally {
        writer.release();
      }
      expect(await store.read({})).toMatchObject({ entries: [], held: true });
      await held; // the runner keeps looking while they are held back
      await holder.query('COMMIT'); // announces nothing
      await runner.waitFor('horizon', consistencyToken(events));
      expect(seen).toEqual([1]);
      expect((await store.read({})).held).toBeUndefined();
    } finally {
      await holder.query('ROLLBACK').catch(() => {});
      holder.release();
      await runner.stop();
      await drop();
    }
  });

  it('an idle runner reads on without writing its checkpoint every cycle, and writes where it read to on stop', async () => {
    const { pool, tables, projectionTables, drop } = await tablesFor('hzi', 4);
    const log = createPostgresEventStore({ client: pool, tables, notifyChannel: false });
    const projections = createPostgresProjectionStore({ client: pool, tables: projectionTables });
    let advances = 0;
    let reads = 0;
    let lastRead = '';
    let enough!: () => void;
    const thirtyReads = new Promise<void>((resolve) => {
      enough = resolve;
    });
    const runner = createProjectionRunner<PostgresClient>({
      log: {
        ...log,
        read: async (request) => {
          const batch = await log.read(request);
          lastRead = batch.position;
          if (++reads === 30) enough();
          return batch;
        },
      },
      store: {
        ...projections,
        advance: (tx, request) => {
          advances++;
          return projections.advance(tx, request);
        },
      },
      projections: [defineProjection<PostgresClient>({ name: 'idle', events: [Noted], apply: () => {} })],
      pollMs: 5,
    });
    try {
      // Each checkpoint write is a transaction of its own, which moves the horizon the next read reports: a runner
      // that wrote whenever the position moved kept writing while the log stayed empty.
      runner.start();
      await thirtyReads;
      expect(advances).toBeLessThanOrEqual(1);
      await runner.stop();
      expect((await projections.load('idle', 1))?.position).toBe(lastRead);
    } finally {
      await runner.stop();
      await drop();
    }
  });

  // The orders example runs its relay in lease mode for this reason: its projections read the outbox as their log.
  for (const mode of ['transaction', 'lease'] as const) {
    it(`a relay in ${mode} mode ${mode === 'transaction' ? 'holds log readers back while it publishes' : 'leaves the log readable while it publishes'}`, async () => {
      const { pool, tables, drop } = await tablesFor(`hzr_${mode}`, 4);
      const store = createPostgresEventStore({ client: pool, tables, notifyChannel: false });
      let release!: () => void;
      const gate = new Promise<void>((resolve) => {
        release = resolve;
      });
      let publishing!: () => void;
      const inPublish = new Promise<void>((resolve) => {
        publishing = resolve;
      });
      const relay = createOutboxRelay({
        store: store.outbox,
        mode,
        pollIntervalMs: 10,
        publisher: {
          capabilities: { preservesKeyOrder: true },
          async publish(messages) {
            publishing();
            await gate; // a broker slow to acknowledge
            return messages.map(() => ({ ok: true as const }));
          },
        },
      });
      const append = async (n: number) => {
        const c = await pool.connect();
        try {
          await c.query('BEGIN');
          await store.outbox.append(c, [Noted.create({ n }) as AnyEvent]);
          await c.query('COMMIT');
        } finally {
          c.release();
        }
      };
      try {
        await append(1);
        relay.start();
        await inPublish; // the relay is inside its batch of event 1
        await append(2); // committed while the batch is out
        const readable = async () => (await store.read({ after: '0', limit: 10 })).entries.length;
        if (mode === 'transaction') {
          // the batch's transaction locked event 1's row: it has an id older than event 2's, and stays open
          const batch = await store.read({ after: '0', limit: 10 });
          expect(batch.entries.map((e) => e.id)).toHaveLength(1);
          expect(batch.held).toBe(true);
        } else {
          // claimed by a short UPDATE of its own: event 2 is readable while event 1 is still being published
          await waitFor(async () => (await readable()) === 2, 10_000, 'event 2 readable during the publish');
        }
        release();
        await waitFor(async () => (await readable()) === 2, 10_000, 'event 2 readable after the batch');
      } finally {
        release();
        await relay.stop();
        await drop();
      }
    });
  }
});
