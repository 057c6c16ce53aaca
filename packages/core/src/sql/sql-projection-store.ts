import { ConfigurationError } from '../errors/cqrs-error.ts';
import type {
  DocumentWrite,
  ParkedEvent,
  ProjectionCheckpoint,
  ProjectionKey,
  ProjectionStore,
  StoredDocument,
} from '../projections/projection-store.ts';
import { assertTableName } from './sql-identifiers.ts';

type Row = Readonly<Record<string, unknown>>;

/** A column type a placeholder is cast to where the dialect needs it. */
export type SqlParamType = 'text' | 'int' | 'bigint' | 'json';

/** What {@link createSqlProjectionStore} needs from an SQL adapter. */
export interface SqlProjectionStoreSpec<TTx> {
  /** Names the adapter in errors, e.g. `postgres`. */
  readonly adapter: string;
  /** Checkpoint, document and parked-event tables (see the adapter's `schemaStatements`). */
  readonly tables: { readonly checkpoints: string; readonly documents: string; readonly parked: string };
  /** Runs a statement on `tx`, or on the store's own connection when `tx` is `undefined`. */
  execute(
    tx: TTx | undefined,
    sql: string,
    params: readonly unknown[],
  ): Promise<{ readonly rows: readonly Row[]; readonly count: number }>;
  transaction<TResult>(work: (tx: TTx) => Promise<TResult>): Promise<TResult>;
  /** A placeholder for the `n`-th (1-based) parameter of a statement, of type `type` (`$n::type`, or `?`). */
  param(n: number, type: SqlParamType): string;
  /** The select expression of the document column as text (e.g. `doc::text`). @default 'doc' */
  readonly docText?: string;
  /** Turns `INSERT INTO` + rest into an insert that does nothing on a duplicate key. */
  insertIgnore(table: string, rest: string): string;
  /** The tail of a multi-row document insert that updates `doc`, `doc_version`, `updated_at` on a duplicate. */
  readonly upsertDocs: string;
  /**
   * A condition matching `id` against one array parameter, the `n`-th (e.g. `id = ANY($3::text[])`): document
   * reads and deletes then send a batch's ids as one parameter in one statement, instead of `IN` lists of up to
   * 500 placeholders (which PostgreSQL plans as a scan of the version's documents).
   */
  idArray?(n: number): string;
  readonly toStorageError: (error: unknown, what: string) => Error;
}

const CHECKPOINT_COLUMNS =
  'name, version, position, state, active, lease_owner, lease_until, error, updated_at';
const MAX_IDS = 500;

/** Builds one statement, numbering its placeholders. */
function statement(
  param: SqlProjectionStoreSpec<unknown>['param'],
  build: (p: (t: SqlParamType) => string) => string,
) {
  let n = 0;
  return build((t) => param(++n, t));
}

function checkpointFromRow(r: Row): ProjectionCheckpoint {
  return {
    name: String(r.name),
    version: Number(r.version),
    position: String(r.position),
    state: r.state === 'stopped' ? 'stopped' : 'running',
    active: Number(r.active) === 1 || r.active === true,
    leaseOwner: r.lease_owner === null || r.lease_owner === undefined ? null : String(r.lease_owner),
    leaseUntil: r.lease_until === null || r.lease_until === undefined ? null : Number(r.lease_until),
    error: r.error === null || r.error === undefined ? null : String(r.error),
    updatedAt: Number(r.updated_at),
  };
}

/**
 * A {@link ProjectionStore} over an adapter's SQL dialect: the checkpoint row with its lease and guarded
 * moves, JSON documents with versions, and parked events, in three tables. Statements are written once here;
 * the adapter provides placeholders, the conflict clauses and the connection.
 * @throws ConfigurationError for a malformed table name
 */
export function createSqlProjectionStore<TTx>(spec: SqlProjectionStoreSpec<TTx>): ProjectionStore<TTx> {
  const { execute, toStorageError } = spec;
  const param = spec.param as SqlProjectionStoreSpec<unknown>['param'];
  const P = assertTableName(spec.tables.checkpoints, `${spec.adapter} projection table`);
  const D = assertTableName(spec.tables.documents, `${spec.adapter} projection document table`);
  const X = assertTableName(spec.tables.parked, `${spec.adapter} projection parked table`);
  const docText = spec.docText ?? 'doc';
  const s = (build: (p: (t: SqlParamType) => string) => string) => statement(param, build);
  const key = (p: (t: SqlParamType) => string) => `name = ${p('text')} AND version = ${p('int')}`;

  const sql = {
    create: s((p) =>
      spec.insertIgnore(
        P,
        `(${CHECKPOINT_COLUMNS}) SELECT ${p('text')}, ${p('int')}, '0', 'running',
         CASE WHEN EXISTS (SELECT 1 FROM ${P} WHERE name = ${p('text')}) THEN 0 ELSE 1 END, NULL, NULL, NULL, ${p('bigint')}`,
      ),
    ),
    acquire: s(
      (p) => `UPDATE ${P} SET lease_owner = ${p('text')}, lease_until = ${p('bigint')} WHERE ${key(p)}
        AND (lease_owner IS NULL OR lease_owner = ${p('text')} OR lease_until < ${p('bigint')})`,
    ),
    load: s((p) => `SELECT ${CHECKPOINT_COLUMNS} FROM ${P} WHERE ${key(p)}`),
    loadActive: s((p) => `SELECT ${CHECKPOINT_COLUMNS} FROM ${P} WHERE name = ${p('text')} AND active = 1`),
    advance: s(
      (
        p,
      ) => `UPDATE ${P} SET position = ${p('text')}, lease_until = ${p('bigint')}, updated_at = ${p('bigint')}
        WHERE ${key(p)} AND lease_owner = ${p('text')} AND position = ${p('text')}`,
    ),
    renew: s(
      (p) => `UPDATE ${P} SET lease_until = ${p('bigint')} WHERE ${key(p)} AND lease_owner = ${p('text')}`,
    ),
    release: s(
      (p) =>
        `UPDATE ${P} SET lease_owner = NULL, lease_until = NULL WHERE ${key(p)} AND lease_owner = ${p('text')}`,
    ),
    reportStop: s(
      (p) =>
        `UPDATE ${P} SET error = ${p('text')}, state = 'stopped' WHERE ${key(p)} AND lease_owner = ${p('text')}`,
    ),
    report: s((p) => `UPDATE ${P} SET error = ${p('text')} WHERE ${key(p)} AND lease_owner = ${p('text')}`),
    resume: s((p) => `UPDATE ${P} SET state = 'running' WHERE ${key(p)}`),
    restart: s(
      (p) => `UPDATE ${P} SET position = '0', state = 'running', error = NULL, updated_at = ${p('bigint')}
        WHERE ${key(p)} AND lease_owner = ${p('text')}`,
    ),
    activate: s(
      (p) =>
        `UPDATE ${P} SET active = CASE WHEN version = ${p('int')} THEN 1 ELSE 0 END WHERE name = ${p('text')}`,
    ),
    clearDocs: s((p) => `DELETE FROM ${D} WHERE ${key(p)}`),
    clearParked: s((p) => `DELETE FROM ${X} WHERE ${key(p)}`),
    park: s((p) =>
      spec.insertIgnore(
        X,
        `(name, version, event_id, event_type, position, error, at) VALUES (${p('text')}, ${p('int')}, ${p('text')}, ${p('text')}, ${p('text')}, ${p('text')}, ${p('bigint')})`,
      ),
    ),
    parked: s(
      (p) => `SELECT event_id, event_type, position, error, at FROM ${X} WHERE ${key(p)} ORDER BY position`,
    ),
  };
  const inList = (n: number, start: number, type: SqlParamType) =>
    Array.from({ length: n }, (_, i) => param(start + i, type)).join(', ');
  const idArray = spec.idArray;
  const idMatch = (n: number) => (idArray !== undefined ? idArray(3) : `id IN (${inList(n, 3, 'text')})`);
  const readDocsSql = (n: number) =>
    `SELECT id, ${docText} AS doc, doc_version FROM ${D} WHERE name = ${param(1, 'text')} AND version = ${param(2, 'int')} AND ${idMatch(n)}`;
  const deleteDocsSql = (n: number) =>
    `DELETE FROM ${D} WHERE name = ${param(1, 'text')} AND version = ${param(2, 'int')} AND ${idMatch(n)}`;
  /** The ids in statements' parameters: one array, or chunks of placeholders. */
  const idParts = (list: readonly string[]): (readonly string[])[] =>
    idArray !== undefined ? (list.length === 0 ? [] : [list]) : chunks(list);
  const idParams = (k: ProjectionKey, part: readonly string[]) =>
    idArray !== undefined ? [k.name, k.version, part] : [k.name, k.version, ...part];
  const upsertDocsSql = (n: number) => {
    const rows: string[] = [];
    for (let i = 0; i < n; i++) {
      const b = i * 6;
      rows.push(
        `(${param(b + 1, 'text')}, ${param(b + 2, 'int')}, ${param(b + 3, 'text')}, ${param(b + 4, 'json')}, ${param(b + 5, 'bigint')}, ${param(b + 6, 'bigint')})`,
      );
    }
    return `INSERT INTO ${D} (name, version, id, doc, doc_version, updated_at) VALUES ${rows.join(', ')} ${spec.upsertDocs}`;
  };

  const run = async (what: string, tx: TTx | undefined, text: string, params: readonly unknown[]) => {
    try {
      return await execute(tx, text, params);
    } catch (error) {
      throw toStorageError(error, `projection ${what}`);
    }
  };
  const changed = async (what: string, tx: TTx | undefined, text: string, params: readonly unknown[]) =>
    (await run(what, tx, text, params)).count > 0;
  const load = async (k: ProjectionKey) => {
    const r = await run('load', undefined, sql.load, [k.name, k.version]);
    return r.rows[0] === undefined ? undefined : checkpointFromRow(r.rows[0]);
  };
  const chunks = <T>(list: readonly T[]): T[][] => {
    const out: T[][] = [];
    for (let i = 0; i < list.length; i += MAX_IDS) out.push(list.slice(i, i + MAX_IDS));
    return out;
  };

  return Object.freeze({
    name: `${spec.adapter} projection store`,
    async transaction<TResult>(work: (tx: TTx) => Promise<TResult>): Promise<TResult> {
      let thrown: { error: unknown } | undefined;
      try {
        return await spec.transaction(async (tx) => {
          try {
            return await work(tx);
          } catch (error) {
            thrown = { error };
            throw error;
          }
        });
      } catch (error) {
        if (thrown !== undefined && thrown.error === error) throw error;
        throw toStorageError(error, 'projection transaction');
      }
    },
    async acquire({ name, version, owner, now, leaseMs }) {
      await run('create', undefined, sql.create, [name, version, name, now]);
      const taken = await changed('acquire', undefined, sql.acquire, [
        owner,
        now + leaseMs,
        name,
        version,
        owner,
        now,
      ]);
      if (!taken) return undefined;
      const row = await load({ name, version });
      return row?.leaseOwner === owner ? row : undefined;
    },
    advance: (tx, r) =>
      changed('advance', tx, sql.advance, [
        r.to,
        r.now + r.leaseMs,
        r.now,
        r.name,
        r.version,
        r.owner,
        r.from,
      ]),
    renew: (r) => changed('renew', undefined, sql.renew, [r.now + r.leaseMs, r.name, r.version, r.owner]),
    release: (r) => changed('release', undefined, sql.release, [r.name, r.version, r.owner]),
    report: (r) =>
      changed('report', undefined, r.stop ? sql.reportStop : sql.report, [
        r.error,
        r.name,
        r.version,
        r.owner,
      ]),
    resume: (r) => changed('resume', undefined, sql.resume, [r.name, r.version]),
    restart: (tx, r) => changed('restart', tx, sql.restart, [Date.now(), r.name, r.version, r.owner]),
    async activate(r) {
      await run('activate', undefined, sql.activate, [r.version, r.name]);
    },
    async load(name, version) {
      if (version !== undefined) return load({ name, version });
      const r = await run('load', undefined, sql.loadActive, [name]);
      return r.rows[0] === undefined ? undefined : checkpointFromRow(r.rows[0]);
    },
    async readDocuments(tx, k, ids) {
      const out = new Map<string, StoredDocument>();
      for (const part of idParts(ids)) {
        const r = await run('read documents', tx, readDocsSql(part.length), idParams(k, part));
        for (const row of r.rows) {
          const doc = typeof row.doc === 'string' ? row.doc : JSON.stringify(row.doc);
          out.set(String(row.id), { doc, version: Number(row.doc_version) });
        }
      }
      return out;
    },
    async writeDocuments(tx, k, writes: readonly DocumentWrite[]) {
      if (tx === undefined) throw new ConfigurationError('writeDocuments() takes a transaction');
      const at = Date.now();
      const kept = writes.filter((w) => w.doc !== null);
      const gone = writes.filter((w) => w.doc === null).map((w) => w.id);
      for (const part of chunks(kept)) {
        const params: unknown[] = [];
        for (const w of part) params.push(k.name, k.version, w.id, w.doc, w.version, at);
        await run('write documents', tx, upsertDocsSql(part.length), params);
      }
      for (const part of idParts(gone))
        await run('delete documents', tx, deleteDocsSql(part.length), idParams(k, part));
    },
    async clear(tx, k) {
      await run('clear', tx, sql.clearDocs, [k.name, k.version]);
      await run('clear', tx, sql.clearParked, [k.name, k.version]);
    },
    async park(tx, k, e: ParkedEvent) {
      await run('park', tx, sql.park, [k.name, k.version, e.eventId, e.eventType, e.position, e.error, e.at]);
    },
    async parked(k) {
      const r = await run('parked', undefined, sql.parked, [k.name, k.version]);
      return r.rows.map((row) => ({
        eventId: String(row.event_id),
        eventType: String(row.event_type),
        position: String(row.position),
        error: String(row.error),
        at: Number(row.at),
      }));
    },
  } satisfies ProjectionStore<TTx>);
}
