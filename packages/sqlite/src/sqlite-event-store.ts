import {
  ConcurrencyError,
  type EventLogEntry,
  type EventStore,
  type ExpectedVersion,
  StorageError,
} from '@cqrs-ts/core';
import {
  checkLogRead,
  checkStreamAppend,
  checkStreamRead,
  createOutboxEncoder,
  expectationMet,
  formatLogPosition,
  keyedByStream,
  type OutboxStore,
  parseLogPosition,
} from '@cqrs-ts/core/spi';
import { logEntryFromRow } from '@cqrs-ts/core/sql';
import { resolveTables } from './schema.ts';
import { toStorageError } from './sqlite-errors.ts';
import type { SqliteDatabase, SqliteOutboxStoreOptions, SqliteValue } from './sqlite-options.ts';
import { createSqliteOutboxStore } from './sqlite-outbox-store.ts';
import { createStatementCache } from './sqlite-statements.ts';

/** Options of {@link createSqliteEventStore}: those of its outbox store. */
export type SqliteEventStoreOptions = SqliteOutboxStoreOptions;

/** The SQLite {@link EventStore}, with the outbox store it appends to (relay that one). */
export interface SqliteEventStore extends EventStore<SqliteDatabase> {
  readonly outbox: OutboxStore<SqliteDatabase>;
}

type Row = Record<string, SqliteValue>;

const COLUMNS =
  'seq, id, type, topic, key, payload, headers, content_encoding, created_at, stream_id, stream_version';
const CHUNK = 500;

const toEntry = (r: Row): EventLogEntry => logEntryFromRow(r, formatLogPosition(String(r.seq)));

/**
 * The event log and streams on SQLite (node:sqlite), over the outbox table and its archive.
 *
 * **Positions** are the outbox sequence (`single-writer` guarantee): SQLite lets one transaction write at a
 * time, and a transaction draws its sequences while it holds the write lock, so sequence order is commit
 * order and a reader that checkpoints on it never skips a late commit.
 *
 * **Streams**: `appendToStream(db, …)` runs inside your open transaction on `db` (`BEGIN IMMEDIATE` …
 * `COMMIT`): it checks and moves the stream's row, then inserts the events with their stream versions. Reads
 * run on the store's `database`.
 */
export function createSqliteEventStore(options: SqliteEventStoreOptions): SqliteEventStore {
  const outbox = createSqliteOutboxStore(options);
  const db = options.database;
  const tables = resolveTables(options.tables);
  const { outbox: t, outboxArchive: a, stream: st } = tables;
  const encoder = createOutboxEncoder(options);
  const now = options.now ?? Date.now;
  const stmt = createStatementCache();
  const guard = async <T>(what: string, fn: () => T): Promise<T> => {
    try {
      return fn();
    } catch (error) {
      throw toStorageError(error, what);
    }
  };
  const union = (where: string, order: string) =>
    `SELECT ${COLUMNS} FROM (SELECT * FROM (SELECT ${COLUMNS} FROM ${a} WHERE ${where} ORDER BY ${order} LIMIT ?)
      UNION ALL SELECT * FROM (SELECT ${COLUMNS} FROM ${t} WHERE ${where} ORDER BY ${order} LIMIT ?)) ORDER BY ${order} LIMIT ?`;
  const readSql = union('seq > ?', 'seq');
  const readTypesSql = (n: number) => {
    const types = Array.from({ length: n }, () => '?').join(',');
    return union(`seq > ? AND type IN (${types})`, 'seq');
  };
  const lastSeqSql = `SELECT max(s) AS s FROM (SELECT max(seq) AS s FROM ${a} UNION ALL SELECT max(seq) FROM ${t})`;
  const streamSql = union('stream_id = ? AND stream_version >= ?', 'stream_version');
  const headSql = `SELECT version, snapshot, snapshot_version FROM ${st} WHERE stream_id = ?`;
  const versionSql = `SELECT version FROM ${st} WHERE stream_id = ?`;

  const currentVersion = (on: SqliteDatabase, streamId: string): number | undefined => {
    const r = stmt(on, versionSql).all(streamId)[0] as Row | undefined;
    return r === undefined ? undefined : Number(r.version);
  };

  const store: SqliteEventStore = {
    outbox,
    capabilities: Object.freeze({ positions: 'single-writer' as const, archive: options.archive ?? false }),
    async read(request) {
      const { after: from, limit, types } = checkLogRead(request);
      const [start] = parseLogPosition(from, 1);
      return guard('event log read', () => {
        const after = start! > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(start);
        if (types === undefined) {
          const entries = (stmt(db, readSql).all(after, limit, after, limit, limit) as Row[]).map(toEntry);
          return { entries, position: entries.at(-1)?.position ?? from };
        }
        // read the last sequence first: every row up to it is committed, so a batch that is not full scanned them
        const last = Number((stmt(db, lastSeqSql).all()[0] as Row).s ?? 0);
        const params = [after, ...types, limit];
        const entries = (stmt(db, readTypesSql(types.length)).all(...params, ...params, limit) as Row[]).map(
          toEntry,
        );
        if (entries.length === limit) return { entries, position: entries.at(-1)!.position };
        const end = Math.max(last, entries.length === 0 ? 0 : Number(entries.at(-1)!.position));
        return { entries, position: end > after ? formatLogPosition(end) : from };
      });
    },
    async readStream(streamId, opts) {
      const { fromVersion, limit } = checkStreamRead(streamId, opts);
      return guard('stream read', () =>
        (
          stmt(db, streamSql).all(streamId, fromVersion, limit, streamId, fromVersion, limit, limit) as Row[]
        ).map(toEntry),
      );
    },
    async loadStream(tx, streamId, opts) {
      const { fromVersion, limit, useSnapshot } = checkStreamRead(streamId, opts, 'stream load');
      return guard('stream load', () => {
        const head = stmt(tx, headSql).all(streamId)[0] as Row | undefined;
        if (head === undefined) return { version: 0, snapshot: undefined, events: [] };
        const snapshot =
          useSnapshot && head.snapshot !== null && head.snapshot_version !== null
            ? { version: Number(head.snapshot_version), state: String(head.snapshot) }
            : undefined;
        const from = Math.max(fromVersion, snapshot === undefined ? 1 : snapshot.version + 1);
        const events = (
          stmt(tx, streamSql).all(streamId, from, limit, streamId, from, limit, limit) as Row[]
        ).map(toEntry);
        return { version: Number(head.version), snapshot, events };
      });
    },
    async appendToStream(tx, streamId, events, opts) {
      const { expected, snapshot } = checkStreamAppend(streamId, events, opts);
      if (tx.isTransaction === false) {
        throw new StorageError('closed-transaction', 'sqlite stream append needs an open transaction');
      }
      const rows =
        events.length === 0 ? [] : encoder.encode(events, now()).map((r) => keyedByStream(r, streamId));
      return guard('stream append', () => {
        const conflict = (e: ExpectedVersion) =>
          new ConcurrencyError(streamId, e, currentVersion(tx, streamId));
        if (rows.length === 0) {
          const version = currentVersion(tx, streamId);
          if (!expectationMet(expected, version)) throw new ConcurrencyError(streamId, expected, version);
          return { version: version ?? 0 };
        }
        const k = rows.length;
        const at = rows[0]!.createdAt;
        const snap = snapshot === undefined ? '' : ', snapshot = ?, snapshot_version = ?';
        const snapParams: SqliteValue[] = snapshot === undefined ? [] : [snapshot.state, snapshot.version];
        let written: Row | undefined;
        if (expected === 'no-stream' || expected === 0 || expected === 'any') {
          const upsert =
            expected === 'any'
              ? 'DO UPDATE SET version = version + excluded.version, updated_at = excluded.updated_at'
              : 'DO NOTHING';
          written = stmt(
            tx,
            `INSERT INTO ${st} (stream_id, version, snapshot, snapshot_version, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)
             ON CONFLICT (stream_id) ${upsert} RETURNING version`,
          ).all(streamId, k, snapshot?.state ?? null, snapshot?.version ?? null, at, at)[0] as
            | Row
            | undefined;
        } else {
          const check = expected === 'stream-exists' ? '' : ' AND version = ?';
          written = stmt(
            tx,
            `UPDATE ${st} SET version = version + ?, updated_at = ?${snap} WHERE stream_id = ?${check} RETURNING version`,
          ).all(k, at, ...snapParams, streamId, ...(expected === 'stream-exists' ? [] : [expected]))[0] as
            | Row
            | undefined;
        }
        if (written === undefined) throw conflict(expected);
        const version = Number(written.version);
        for (let i = 0; i < rows.length; i += CHUNK) {
          const part = rows.slice(i, i + CHUNK);
          const params: SqliteValue[] = [];
          part.forEach((r, j) => {
            params.push(
              r.id,
              r.type,
              r.topic,
              r.key,
              r.payload,
              JSON.stringify(r.headers),
              r.contentEncoding,
            );
            params.push(r.createdAt, r.createdAt, streamId, version - k + i + j + 1);
          });
          stmt(
            tx,
            `INSERT INTO ${t} (id, type, topic, key, payload, headers, content_encoding, next_attempt_at, created_at, stream_id, stream_version)
             VALUES ${part.map(() => '(?,?,?,?,?,?,?,?,?,?,?)').join(',')}`,
          ).run(...params);
        }
        return { version };
      });
    },
  };
  return store;
}
