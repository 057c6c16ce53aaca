/**
 * `write` suite: the write side through the unit of work and the event-sourced repository on PostgreSQL, MariaDB and
 * SQLite, against the same work in a hand-written transaction with the same client (`us_per_op`). An unreachable
 * database reports nothing.
 */
import type { CaseSpec, Metrics, Suite } from '../lib/types.ts';
import { measureWrite, WRITE_KINDS, type WriteKind, type WriteParts } from './write/common.ts';
import {
  EVENT_APPEND_KINDS,
  type EventAppendKind,
  type EventAppendParts,
  measureEventAppend,
} from './write/event-append.ts';

const moduleUrl = (file: string): string => new URL(`./write/${file}`, import.meta.url).href;

const DBS = [
  ['postgres', 'postgres.ts'],
  ['mariadb', 'mariadb.ts'],
  ['sqlite', 'sqlite.ts'],
] as const;

const cases: CaseSpec[] = DBS.flatMap(([db, file]) =>
  [...WRITE_KINDS, ...EVENT_APPEND_KINDS].map(([label, kind]) => ({
    name: `${db} ${label}`,
    module: moduleUrl(file),
    variant: kind,
  })),
);
const APPENDS = new Set<string>(EVENT_APPEND_KINDS.map(([, kind]) => kind));

type Parts = WriteParts<never> & EventAppendParts<never>;

async function open(spec: CaseSpec): Promise<Parts | undefined> {
  if (spec.name.startsWith('postgres'))
    return (await import('./write/postgres.ts')).openPostgres() as Promise<Parts | undefined>;
  if (spec.name.startsWith('mariadb'))
    return (await import('./write/mariadb.ts')).openMariadb() as Promise<Parts | undefined>;
  return (await import('./write/sqlite.ts')).openSqlite() as Promise<Parts>;
}

async function run(spec: CaseSpec): Promise<Metrics> {
  const parts = await open(spec);
  if (!parts) return {};
  try {
    if (APPENDS.has(spec.variant)) return await measureEventAppend(parts, spec.variant as EventAppendKind);
    return await measureWrite(parts, spec.variant as WriteKind);
  } finally {
    await parts.close();
  }
}

export const write: Suite = {
  name: 'write',
  description:
    'the write side: unit of work, idempotent commands and aggregate appends vs hand-written transactions',
  columns: [
    { field: 'us_per_op', label: 'us/op', digits: 1 },
    { field: 'x_paired', label: 'x paired base', digits: 2 },
  ],
  notes: [
    'raw unit: BEGIN, INSERT one business row, store.append of one event created in the loop, COMMIT, with the same client (pg Pool, mysql2 pool, node:sqlite) as the other cases.',
    "unit of work: mediator.send(PlaceOrder.create(...)) through the storage package's unit of work; the handler inserts the same row with the transaction it gets and ctx.emit()s one event, which the unit appends before the commit. Target: <= 1.2x raw unit.",
    'idempotent first: the same send with a new idempotencyKey each time (the unit also claims the key and stores the result in the inbox table). Target: <= 1.3x unit of work.',
    'idempotent replay: the same send with one key again and again: the stored result, no handler, no write. Target: idempotent first / replay >= 3.',
    'raw event append: BEGIN, UPDATE the stream row from the expected version (INSERT for a new stream), INSERT one event row (JSON payload, CloudEvents headers, stream id and version) written by hand, COMMIT; 100 streams in turn.',
    "aggregate append: the same transaction around repository.append(tx, id, [event], { expectedVersion }) of createEventSourcedRepository over the package's event store (its checks, encoder, per-key advisory lock on Postgres). Target: <= 1.3x raw event append.",
    "x paired base: the case's median time per op over its base's (unit of work: raw unit; idempotent first: unit of work; idempotent replay: idempotent first; aggregate append: raw event append), the two run alternately op by op in one process for >= 1 s after a 300 ms warm-up, so load from other processes falls on both alike. Compare targets with this column: us/op of separate processes can differ by 30% on a busy machine. Targets: unit of work <= 1.2, idempotent first <= 1.3, idempotent replay <= 0.33, aggregate append <= 1.3.",
    "us/op: median of 7 samples of >= 150 ms after a 300 ms warm-up; database settings are the servers' defaults (fsync on commit); sqlite: a WAL file, default synchronous.",
  ],
  nodeFlags: [],
  timeoutMs: 90_000,
  cases,
  run,
};
