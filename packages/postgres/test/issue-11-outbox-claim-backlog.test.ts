/**
 * Issue 11: after a 120 s broker outage the relay drained a Postgres outbox at one 500-row batch per ~10 s. Each
 * claim was planned from statistics older than the backlog (a table never analyzed, a generic plan cached while it
 * was small), so every batch read and sorted the whole backlog, spilling whole rows to disk. A claim must read
 * about as many rows as it takes, whatever the backlog: checked on the plan of the statement the store sent.
 */
import { type AnyEvent, createOutboxRelay, defineEvent } from '@cqrs-ts/core';
import { createPostgresOutboxStore, migrate } from '@cqrs-ts/postgres';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { PG_URL, uniqueSuffix } from '../../core/test/support/services.ts';
import { available } from './support.ts';

const Ticked = defineEvent('claim.ticked', {
  topic: 'ticks',
  key: (p: { k: string; n: number }) => p.k,
}).withPayload<{ k: string; n: number }>();

interface Sent {
  readonly name: string | undefined;
  readonly text: string;
  readonly values: readonly unknown[];
}

interface PlanNode {
  readonly 'Node Type': string;
  readonly 'Actual Rows': number;
  readonly 'Actual Loops': number;
  readonly Plans?: readonly PlanNode[];
}

/** The most rows any node of the plan produced over all its loops. */
function mostRows(node: PlanNode): number {
  let most = node['Actual Rows'] * node['Actual Loops'];
  for (const child of node.Plans ?? []) most = Math.max(most, mostRows(child));
  return most;
}

describe.skipIf(!available)('issue 11: a claim reads about a batch, not the backlog', () => {
  const pool = new pg.Pool({ connectionString: PG_URL, max: 3 });
  const tables: string[] = [];
  afterAll(async () => {
    if (tables.length > 0) await pool.query(`DROP TABLE IF EXISTS ${tables.join(', ')}`);
    await pool.end();
  });

  /** A pool for the store that records the claim statements it sends (pool queries and transaction clients). */
  function recordingPool(sent: Sent[]) {
    const record = (config: unknown) => {
      const c = config as { name?: string; text?: string; values?: unknown[] };
      if (typeof c?.text === 'string' && c.text.includes('SKIP LOCKED')) {
        sent.push({ name: c.name, text: c.text, values: c.values ?? [] });
      }
    };
    const patched = new WeakSet<object>();
    return {
      query(...args: unknown[]) {
        record(args[0]);
        return (pool.query as (...a: unknown[]) => unknown)(...args);
      },
      async connect() {
        const client = await pool.connect();
        if (!patched.has(client)) {
          patched.add(client);
          const query = client.query.bind(client) as (...args: unknown[]) => unknown;
          (client as { query: unknown }).query = (...args: unknown[]) => {
            record(args[0]);
            return query(...args);
          };
        }
        return client;
      },
    };
  }

  for (const mode of ['transaction', 'lease'] as const) {
    it(`${mode} mode: the claim after a backlog built up reads at most a few batches of rows, planned with the table as it is`, async () => {
      const sfx = `claim_${mode}_${uniqueSuffix}`;
      const names = { outbox: `ob_${sfx}`, inbox: `ib_${sfx}` };
      tables.push(names.outbox, names.inbox, `${names.outbox}_archive`, `${names.outbox}_stream`);
      await migrate(pool, { tables: names });
      const sent: Sent[] = [];
      const store = createPostgresOutboxStore({
        client: recordingPool(sent) as never,
        tables: names,
        notifyChannel: false,
      });
      const batchSize = 100;
      const relay = createOutboxRelay({
        store,
        mode,
        batchSize,
        publisher: {
          capabilities: { preservesKeyOrder: true },
          publish: async (messages) => messages.map(() => ({ ok: true })),
        },
      });
      let n = 0;
      const append = async (count: number) => {
        const events = Array.from(
          { length: count },
          () => Ticked.create({ k: `k${n % 200}`, n: n++ }) as AnyEvent,
        );
        const client = await pool.connect();
        try {
          await client.query('BEGIN');
          await store.append(client, events);
          await client.query('COMMIT');
        } finally {
          client.release();
        }
      };

      // The flow before the outage: a small table, claimed often (a cached plan would be made now).
      await append(50);
      for (let i = 0; i < 8; i++) await relay.runOnce();
      // The backlog an outage leaves.
      await append(50 * batchSize);
      sent.length = 0;
      expect(await relay.runOnce()).toMatchObject({ claimed: batchSize, published: batchSize });

      const claim = sent.at(-1)!;
      expect(claim.name).toBeUndefined(); // planned at each claim, never a generic plan from the small table
      const client = await pool.connect();
      try {
        await client.query('BEGIN');
        const explained = await client.query({
          text: `EXPLAIN (ANALYZE, FORMAT JSON) ${claim.text}`,
          values: [...claim.values],
        });
        await client.query('ROLLBACK');
        const plan = (explained.rows[0] as { 'QUERY PLAN': [{ Plan: PlanNode }] })['QUERY PLAN'][0].Plan;
        expect(mostRows(plan)).toBeLessThanOrEqual(4 * batchSize);
      } finally {
        client.release();
      }
    });
  }
});
