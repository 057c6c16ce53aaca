/**
 * The orders service on Postgres and NATS as separate processes (one per role), in a schema and a JetStream
 * stream of its own, with the consistency checks the integration and load tests make afterwards.
 */
import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import pg from 'pg';
import { service, uniqueSuffix } from '../../../packages/core/test/support/services.ts';
import { startProcess } from './support.ts';

export const PG_URL = process.env.CQRS_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
export const NATS_URL = process.env.CQRS_NATS_URL ?? '127.0.0.1:4222';

/** True when Postgres and a JetStream server answer (else the suite skips, or fails with CQRS_REQUIRE_SERVICES=1). */
export const clusterAvailable =
  (await service('postgres', async () => {
    const c = new pg.Client({ connectionString: PG_URL, connectionTimeoutMillis: 2000 });
    await c.connect();
    await c.end();
  })) &&
  (await service('nats', async () => {
    const nc = await connect({ servers: NATS_URL, timeout: 2000, reconnect: false });
    try {
      await (await jetstreamManager(nc)).getAccountInfo();
    } finally {
      await nc.close();
    }
  }));

export const ROLES = ['api', 'relay', 'consumer', 'saga-recovery', 'projections'] as const;
export type Role = (typeof ROLES)[number];
type Proc = ReturnType<typeof startProcess>;

let counter = 0;

/** A schema, a stream and the environment of the service processes; `dispose()` drops both. */
export async function createCluster(extraEnv: Record<string, string> = {}) {
  const name = `orders_${uniqueSuffix}_${counter++}`;
  const admin = new pg.Pool({ connectionString: PG_URL, max: 2 });
  await admin.query(`CREATE SCHEMA ${name}`);
  const url = `${PG_URL}?options=${encodeURIComponent(`-c search_path=${name}`)}`;
  const pool = new pg.Pool({ connectionString: url, max: 2 });
  const env: Record<string, string> = {
    ORDERS_STORAGE: 'postgres',
    DATABASE_URL: url,
    ORDERS_PG_POOL_SIZE: '10',
    ORDERS_BROKER: 'nats',
    NATS_SERVERS: NATS_URL,
    ORDERS_NATS_STREAM: name.toUpperCase(),
    ORDERS_NATS_SUBJECT_PREFIX: name.replace(/_/g, '-'),
    ORDERS_NATS_ACK_WAIT_MS: '3000',
    ORDERS_SAGA_LEASE_MS: '2000',
    ORDERS_SAGA_RECOVER_EVERY_MS: '500',
    ORDERS_PORT: '0',
    ...extraEnv,
  };
  const procs = new Map<Role, Proc>();
  let apiUrl = '';

  const start = async (role: Role) => {
    const p = startProcess([`--role=${role}`], env);
    procs.set(role, p);
    const url = await p.ready;
    if (role === 'api') apiUrl = url!;
    return p;
  };

  return {
    env,
    pool,
    get url() {
      return apiUrl;
    },
    procs,
    /** Starts each role as a process (the api first: it migrates the schema) and waits until all are ready. */
    async start(roles: readonly Role[] = ROLES) {
      await start(roles[0]!);
      await Promise.all(roles.slice(1).map(start));
    },
    /** SIGKILLs a role's process and starts a new one. */
    async restart(role: Role) {
      const old = procs.get(role)!;
      old.child.kill('SIGKILL');
      await old.exited;
      await start(role);
    },
    /** SIGTERMs every process; resolves with each exit. */
    async stop() {
      const exits = await Promise.all(
        [...procs].map(async ([role, p]) => {
          if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGTERM');
          return { role, ...(await p.exited), output: p.output() };
        }),
      );
      procs.clear();
      return exits;
    },
    async dispose() {
      for (const p of procs.values()) p.child.kill('SIGKILL');
      await pool.end();
      await admin.query(`DROP SCHEMA ${name} CASCADE`).catch(() => {});
      await admin.end();
      const nc = await connect({ servers: NATS_URL });
      const jsm = await jetstreamManager(nc);
      for (const s of [env.ORDERS_NATS_STREAM!, `${env.ORDERS_NATS_STREAM}_DLQ`])
        await jsm.streams.delete(s).catch(() => {});
      await nc.close();
    },
  };
}

export type Cluster = Awaited<ReturnType<typeof createCluster>>;

const FINAL = ['shipped', 'rejected', 'cancelled'];

/** What the database says after a run: counts, and every inconsistency found (empty when all is well). */
export async function inspect(pool: pg.Pool) {
  const q = async (sql: string) => (await pool.query(sql)).rows as Record<string, unknown>[];
  const n = async (sql: string) => Number((await q(sql))[0]!.n);
  const orders = await n('SELECT count(*) AS n FROM orders');
  const projected = await n('SELECT count(*) AS n FROM order_view');
  const final = await n(`SELECT count(*) AS n FROM order_view WHERE status IN ('${FINAL.join("','")}')`);
  const sagas = Object.fromEntries(
    (await q('SELECT status, count(*) AS n FROM cqrs_saga GROUP BY status')).map((r) => [
      r.status,
      Number(r.n),
    ]),
  ) as Record<string, number>;
  const pending = await n("SELECT count(*) AS n FROM cqrs_outbox WHERE status <> 'published'");
  const problems: string[] = [];
  const mismatched = await n(
    'SELECT count(*) AS n FROM orders o LEFT JOIN order_view v ON v.id = o.id WHERE v.id IS NULL OR v.status <> o.status',
  );
  if (mismatched > 0) problems.push(`${mismatched} orders whose projected status is missing or differs`);
  const badPayments = await n(
    `SELECT count(*) AS n FROM orders o LEFT JOIN payments p ON p.order_id = o.id
     WHERE (o.status = 'shipped') <> (coalesce(p.status, '') = 'charged')`,
  );
  if (badPayments > 0)
    problems.push(`${badPayments} orders charged when not shipped, or shipped without a charge`);
  const badStock = await n(
    `SELECT count(*) AS n FROM orders o LEFT JOIN (SELECT order_id, sum(quantity) AS q FROM reservations GROUP BY order_id) r
     ON r.order_id = o.id WHERE (o.status = 'shipped') <> (r.q IS NOT NULL)`,
  );
  if (badStock > 0) problems.push(`${badStock} orders holding stock when not shipped, or shipped without it`);
  const reserved = await n(
    `SELECT count(*) AS n FROM (SELECT o.id FROM orders o, json_array_elements(o.lines::json) l
      WHERE o.status = 'shipped' GROUP BY o.id
      HAVING sum((l->>'quantity')::int) <> (SELECT sum(quantity) FROM reservations WHERE order_id = o.id)) x`,
  );
  if (reserved > 0)
    problems.push(`${reserved} shipped orders whose reserved quantity differs from their lines`);
  for (const r of await q('SELECT id, steps FROM order_view')) {
    const steps = JSON.parse(String(r.steps)) as string[];
    if (new Set(steps).size !== steps.length)
      problems.push(`order ${r.id} applied a step twice: ${steps.join(', ')}`);
  }
  return { orders, projected, final, sagas, pending, problems };
}

/** True once every order is projected in a final status and every saga has ended. */
export function settled(r: Awaited<ReturnType<typeof inspect>>): boolean {
  const ended = (r.sagas.completed ?? 0) + (r.sagas.compensated ?? 0);
  return r.projected === r.orders && r.final === r.orders && ended === r.orders && r.pending === 0;
}

/** Polls `inspect` until the run has settled; throws with the last report after `timeoutMs`. */
export async function waitSettled(pool: pg.Pool, timeoutMs: number) {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const report = await inspect(pool);
    if (settled(report)) return report;
    if (Date.now() > end) throw new Error(`not settled after ${timeoutMs} ms: ${JSON.stringify(report)}`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}
