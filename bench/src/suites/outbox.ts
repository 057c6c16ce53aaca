/**
 * `outbox` suite: the cost of the transactional outbox on PostgreSQL, MariaDB and SQLite. Per database: a business
 * transaction without and with one appended event (`us_per_op`), a hand-written claim loop against the cqrs-ts
 * relay draining the same pre-inserted rows (`per_s`), and on Postgres the commit-to-publish latency at a steady
 * 1,000 events/s with and without LISTEN/NOTIFY (`ms`), and the drain of 20,000 events held in a Postgres outbox during a
 * NATS outage, relay against a hand-written loop (`per_s`). A database that is unreachable is noted and its cases
 * report nothing.
 */
import type { CaseSpec, Metrics, Suite } from '../lib/types.ts';
import { measureThroughput, type OutboxTarget } from './outbox/common.ts';

const moduleUrl = (file: string): string => new URL(`./outbox/${file}`, import.meta.url).href;

/** Rows drained by the `raw relay loop` and `relay` cases. */
const ROWS = 20_000;
const DBS = [
  ['postgres', 'postgres.ts'],
  ['mariadb', 'mariadb.ts'],
  ['sqlite', 'sqlite.ts'],
] as const;
const KINDS = [
  ['bare txn', 'bare-txn'],
  ['append', 'append'],
  ['raw relay loop', 'raw-relay-loop'],
  ['relay', 'relay'],
] as const;

const cases: CaseSpec[] = [
  ...DBS.flatMap(([db, file]) =>
    KINDS.map(([label, kind]) => ({ name: `${db} ${label}`, module: moduleUrl(file), variant: kind })),
  ),
  { name: 'postgres raw drain after outage', module: moduleUrl('drain.ts'), variant: 'drain-raw' },
  { name: 'postgres drain after outage', module: moduleUrl('drain.ts'), variant: 'drain-relay' },
  ...(['notify', 'poll'] as const).flatMap((mode) =>
    (['p50', 'p99'] as const).map((p) => ({
      name: `postgres commit-to-publish ${p} (${mode})`,
      module: moduleUrl('postgres.ts'),
      variant: `latency-${mode}-${p}`,
    })),
  ),
];

function percentile(values: readonly number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

async function openTarget(spec: CaseSpec): Promise<OutboxTarget | undefined> {
  if (spec.name.startsWith('postgres')) return (await import('./outbox/postgres.ts')).openPostgres();
  if (spec.name.startsWith('mariadb')) return (await import('./outbox/mariadb.ts')).openMariadb();
  return (await import('./outbox/sqlite.ts')).openSqlite();
}

async function run(spec: CaseSpec): Promise<Metrics> {
  const latency = /^latency-(notify|poll)-(p50|p99)$/.exec(spec.variant);
  if (latency) {
    const { commitToPublish } = await import('./outbox/postgres.ts');
    const ms = await commitToPublish(latency[1] as 'notify' | 'poll');
    return ms === undefined ? {} : { ms: percentile(ms, latency[2] === 'p50' ? 50 : 99) };
  }
  if (spec.variant === 'drain-raw' || spec.variant === 'drain-relay') {
    const { drainAfterOutage } = await import('./outbox/drain.ts');
    return drainAfterOutage(spec.variant === 'drain-raw' ? 'raw' : 'relay');
  }
  const target = await openTarget(spec);
  if (!target) return {};
  try {
    return await measureThroughput(target, spec.variant as Parameters<typeof measureThroughput>[1], ROWS);
  } finally {
    await target.close();
  }
}

export const outbox: Suite = {
  name: 'outbox',
  description:
    'transactional outbox on postgres, mariadb, sqlite: txn cost, relay throughput, drain after a NATS outage, commit-to-publish latency',
  columns: [
    { field: 'us_per_op', label: 'us/op', digits: 1 },
    { field: 'per_s', label: 'rows/s', digits: 0 },
    { field: 'ms', label: 'ms', digits: 1 },
  ],
  notes: [
    `bare txn / append: BEGIN, INSERT one business row (+ store.append of one event), COMMIT; median of 7 samples of >= 150 ms after a 300 ms warm-up.`,
    `raw relay loop: the work any relay must do, hand-written, per transaction: fetch the next 500 pending rows with what a publisher needs (SELECT seq, id, type, topic, key, payload, headers, content_encoding ... ORDER BY seq LIMIT 500, FOR UPDATE SKIP LOCKED on postgres and mariadb; BEGIN IMMEDIATE on sqlite), headers as objects, then UPDATE ... SET status = 'published' WHERE seq IN (...), COMMIT; no per-key order check, no publishing.`,
    `relay: the cqrs-ts relay (runOnce in a loop, batch 500, mode auto = transaction: one transaction per batch that locks the rows, checks per-key order, decodes, publishes into the in-memory broker and marks them; sqlite: the store on its own connection, ownConnection: true); both sides drain ${ROWS.toLocaleString('en-US')} pre-inserted rows over 100 keys.`,
    `drain after outage: ${ROWS.toLocaleString('en-US')} events over 100 keys held in a Postgres outbox while NATS was unreachable (the publisher answered with a connection BrokerError, the relay's circuit opened), timed from NATS being back until no row is pending; relay: cqrs-ts relay, batch 500, through createNatsPublisher, its next probe included; raw: per transaction lock the next 500 rows (FOR UPDATE SKIP LOCKED), js.publish each with the same subject, data, ce-* headers and Nats-Msg-Id (all in flight, PubAck awaited), mark them, COMMIT. Compare with broker suite's nats raw.`,
    'commit-to-publish: 5 events per transaction every 5 ms (1,000 events/s) for 3 s after a 0.5 s warm-up, from the COMMIT reply to the in-memory broker delivery; (notify): LISTEN/NOTIFY wake-up, default 1 s poll; (poll): no wake-up, 100 ms poll.',
    'database settings are the servers’ defaults (fsync on commit); sqlite: a WAL file, default synchronous.',
  ],
  nodeFlags: [],
  timeoutMs: 90_000,
  cases,
  run,
};
