import {
  ConcurrencyError,
  ConfigurationError,
  type EventLogEntry,
  type EventStore,
  type LogBatch,
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
import { classifyMysqlError, toStorageError } from './mysql-errors.ts';
import { type Execute, execOf } from './mysql-executor.ts';
import type { MysqlOutboxStoreOptions, MysqlTransaction } from './mysql-options.ts';
import { createMysqlOutboxStore } from './mysql-outbox-store.ts';
import { resolveTables } from './schema.ts';

/** Options of {@link createMysqlEventStore}: those of its outbox store, and the gap timeout of readers. */
export interface MysqlEventStoreOptions extends MysqlOutboxStoreOptions {
  /**
   * How long a read waits for a sequence number that is missing below a committed row before it counts it as
   * never coming (a rolled-back append, a deleted row). Only sequences no running transaction holds wait: one
   * that a transaction holds is waited for until that transaction ends, however long. @default 1000
   */
  readonly gapTimeoutMs?: number;
  /** How long one read waits for the transactions holding missing sequences, in seconds. @default 10 */
  readonly gapLockWaitSeconds?: number;
}

/** The MariaDB/MySQL {@link EventStore}, with the outbox store it appends to (relay that one). */
export interface MysqlEventStore extends EventStore<MysqlTransaction> {
  readonly outbox: OutboxStore<MysqlTransaction>;
}

type Row = Record<string, unknown>;

const COLUMNS =
  'seq, id, type, topic, `key`, payload, headers, content_encoding, created_at, stream_id, stream_version';
const CHUNK = 1000;
/** Gaps larger than this are probed with one range query instead of point lookups. */
const POINT_PROBE_LIMIT = 1000;
/** Bound on the remembered gaps (first-seen times and ranges known to be permanent). */
const MAX_REMEMBERED = 10_000;

const marks = (n: number) => Array.from({ length: n }, () => '?').join(',');

const toEntry = (r: Row): EventLogEntry => logEntryFromRow(r, formatLogPosition(String(r.seq)));

/**
 * The event log and streams on MariaDB/MySQL (mysql2, Kysely), over the outbox table and its archive.
 *
 * **Positions** are the outbox sequence (`high-water-mark` guarantee). InnoDB hands out AUTO_INCREMENT values
 * when a row is inserted, not when it commits, so a committed row can sit above a sequence whose transaction
 * is still running. A read therefore stops at the first missing sequence below the rows it found: it probes the
 * missing sequences with a locking read (`LOCK IN SHARE MODE`), which waits until the transaction holding them
 * ends, then reads again. A sequence no transaction holds (rolled back, deleted, or about to be inserted) is
 * skipped once it has been missing for `gapTimeoutMs`. Readers therefore lag by the commit time of the slowest
 * writer below them, plus `gapTimeoutMs` once per rolled-back append.
 *
 * **Streams**: `appendToStream` checks and moves the stream's row (`UPDATE … WHERE version = expected`, or an
 * `INSERT` for a new stream) then inserts the events with their stream versions, in the caller's transaction.
 * A second writer of the same stream waits on the row lock until the first ends, then gets a ConcurrencyError.
 */
export function createMysqlEventStore(options: MysqlEventStoreOptions): MysqlEventStore {
  const outbox = createMysqlOutboxStore(options);
  const tables = resolveTables(options.tables);
  const { outbox: t, outboxArchive: a, stream: st } = tables;
  const encoder = createOutboxEncoder(options);
  const now = options.now ?? Date.now;
  const gapTimeoutMs = options.gapTimeoutMs ?? 1000;
  if (!Number.isFinite(gapTimeoutMs) || gapTimeoutMs < 0)
    throw new ConfigurationError('mysql event store: gapTimeoutMs must be a number >= 0');
  const lockWait = options.gapLockWaitSeconds ?? 10;
  if (!Number.isInteger(lockWait) || lockWait < 1 || lockWait > 3600)
    throw new ConfigurationError('mysql event store: gapLockWaitSeconds must be an integer from 1 to 3600');
  const exec = execOf(options.client);
  const run = async (what: string, sql: string, params: readonly unknown[], execute: Execute = exec) => {
    try {
      return await execute(sql, params);
    } catch (error) {
      throw toStorageError(error, what);
    }
  };

  /** When each gap (by its first sequence) was first seen missing, epoch ms. */
  const firstSeen = new Map<number, number>();
  /** Gaps known to stay empty: first sequence → last. */
  const permanent = new Map<number, number>();
  const remember = (map: Map<number, number>, key: number, value: number) => {
    if (map.size >= MAX_REMEMBERED) map.delete(map.keys().next().value!);
    map.set(key, value);
  };

  // `SET STATEMENT` bounds the lock wait on MariaDB; MySQL has no such syntax and waits innodb_lock_wait_timeout.
  let setStatement = true;
  /** Locking read of the missing sequences: returns once no transaction holds them; the ones that exist now. */
  const probe = async (gaps: readonly (readonly [number, number])[]): Promise<Set<number> | undefined> => {
    const points: number[] = [];
    let range: readonly [number, number] | undefined;
    for (const [from, to] of gaps) {
      if (points.length + (to - from + 1) > POINT_PROBE_LIMIT) {
        range = [from, to];
        break;
      }
      for (let s = from; s <= to; s++) points.push(s);
    }
    const where = range === undefined ? `seq IN (${marks(points.length)})` : 'seq BETWEEN ? AND ?';
    const params = range === undefined ? points : [...range];
    const select = `SELECT seq FROM ${t} WHERE ${where} LOCK IN SHARE MODE`;
    for (;;) {
      try {
        const { rows } = await exec(
          setStatement ? `SET STATEMENT innodb_lock_wait_timeout = ${lockWait} FOR ${select}` : select,
          params,
        );
        return new Set(rows.map((r) => Number(r.seq)));
      } catch (error) {
        const e = error as { errno?: number };
        if (setStatement && e?.errno === 1064) {
          setStatement = false;
          continue;
        }
        // still held after the wait: report nothing resolved, the next read tries again
        if (classifyMysqlError(error) === 'timeout') return undefined;
        throw toStorageError(error, 'event log gap probe');
      }
    }
  };

  const unionSql = (where: string, columns: string, order: string) =>
    `SELECT ${columns} FROM ((SELECT ${columns} FROM ${a} WHERE ${where} ORDER BY ${order} LIMIT ?)
      UNION ALL (SELECT ${columns} FROM ${t} WHERE ${where} ORDER BY ${order} LIMIT ?)) u ORDER BY ${order} LIMIT ?`;
  const readRowsSql = unionSql('seq > ?', COLUMNS, 'seq');
  const scanSql = unionSql('seq > ?', 'seq, type', 'seq');
  const bySeqSql = (n: number) =>
    `SELECT ${COLUMNS} FROM ${a} WHERE seq IN (${marks(n)}) UNION ALL SELECT ${COLUMNS} FROM ${t} WHERE seq IN (${marks(n)})`;
  const streamSql = unionSql('stream_id = ? AND stream_version >= ?', COLUMNS, 'stream_version');

  /**
   * The rows after `after` up to the high-water mark: `rows` is the prefix of `found` (ascending) below the first
   * missing sequence that is still unresolved; `mark` the last sequence known to be settled.
   */
  const settle = async <TRow extends { seq: number }>(
    after: number,
    found: readonly TRow[],
    refetch: () => Promise<readonly TRow[]>,
  ): Promise<{ rows: readonly TRow[]; mark: number }> => {
    let rows = found;
    for (let round = 0; ; round++) {
      const gaps: [number, number][] = [];
      let expected = after + 1;
      for (const r of rows) {
        if (r.seq > expected) gaps.push([expected, r.seq - 1]);
        expected = r.seq + 1;
      }
      const open = gaps.filter(([from, to]) => permanent.get(from) !== to);
      if (open.length === 0) return { rows, mark: rows.at(-1)?.seq ?? after };
      const present = await probe(open);
      if (present !== undefined && present.size > 0 && round < 2) {
        // transactions that held missing sequences committed meanwhile: read again
        rows = await refetch();
        continue;
      }
      // the first gap still unresolved ends what may be returned
      const at = Date.now();
      let limit = Number.POSITIVE_INFINITY;
      for (const [from, to] of open) {
        const seen = firstSeen.get(from);
        const vacant = present !== undefined && ![...present].some((s) => s >= from && s <= to);
        if (vacant && seen !== undefined && at - seen >= gapTimeoutMs) {
          firstSeen.delete(from);
          remember(permanent, from, to);
          continue;
        }
        if (seen === undefined) remember(firstSeen, from, at);
        if (from < limit) limit = from;
      }
      const kept = rows.filter((r) => r.seq < limit);
      return {
        rows: kept,
        mark: limit === Number.POSITIVE_INFINITY ? (rows.at(-1)?.seq ?? after) : limit - 1,
      };
    }
  };

  const versionLocked = async (execute: Execute, streamId: string): Promise<number | undefined> => {
    // a locking read sees the last committed version, also under REPEATABLE READ
    const r = await run(
      'stream version',
      `SELECT version FROM ${st} WHERE stream_id = ? LOCK IN SHARE MODE`,
      [streamId],
      execute,
    );
    return r.rows.length === 0 ? undefined : Number(r.rows[0]!.version);
  };

  const store: MysqlEventStore = {
    outbox,
    capabilities: Object.freeze({ positions: 'high-water-mark' as const, archive: options.archive ?? false }),
    async read(request): Promise<LogBatch> {
      const { after: from, limit, types } = checkLogRead(request);
      const [start] = parseLogPosition(from, 1);
      if (start! > BigInt(Number.MAX_SAFE_INTEGER)) return { entries: [], position: from };
      const after = Number(start);
      if (types === undefined) {
        const fetch = async () =>
          (await run('event log read', readRowsSql, [after, limit, after, limit, limit])).rows.map((r) => ({
            seq: Number(r.seq),
            row: r,
          }));
        const { rows } = await settle(after, await fetch(), fetch);
        const entries = rows.map((r) => toEntry(r.row));
        return { entries, position: entries.at(-1)?.position ?? from };
      }
      // filtered: settle the sequence of everything scanned, then fetch the matching rows
      const scan = Math.min(Math.max(limit * 4, 2_000), 20_000);
      const fetch = async () =>
        (await run('event log read', scanSql, [after, scan, after, scan, scan])).rows.map((r) => ({
          seq: Number(r.seq),
          type: r.type as string,
        }));
      const scanned = await fetch();
      const { rows, mark } = await settle(after, scanned, fetch);
      const wanted = new Set(types);
      const hits: number[] = [];
      for (const r of rows) {
        if (hits.length === limit) break;
        if (wanted.has(r.type)) hits.push(r.seq);
      }
      // a full batch ends at its last event; otherwise everything up to the mark was scanned
      const end = hits.length === limit ? hits.at(-1)! : mark;
      const entries: EventLogEntry[] = [];
      for (let i = 0; i < hits.length; i += CHUNK) {
        const part = hits.slice(i, i + CHUNK);
        const r = await run('event log read', bySeqSql(part.length), [...part, ...part]);
        entries.push(...r.rows.map(toEntry));
      }
      entries.sort((x, y) => (x.position < y.position ? -1 : 1));
      const position = end > after ? formatLogPosition(end) : from;
      return { entries, position };
    },
    async readStream(streamId, opts) {
      const { fromVersion, limit } = checkStreamRead(streamId, opts);
      const { rows } = await run('stream read', streamSql, [
        streamId,
        fromVersion,
        limit,
        streamId,
        fromVersion,
        limit,
        limit,
      ]);
      return rows.map(toEntry);
    },
    async loadStream(tx, streamId, opts) {
      const { fromVersion, limit, useSnapshot } = checkStreamRead(streamId, opts, 'stream load');
      const execute = execOf(tx);
      const head = (
        await run(
          'stream load',
          `SELECT version, snapshot, snapshot_version FROM ${st} WHERE stream_id = ?`,
          [streamId],
          execute,
        )
      ).rows[0];
      if (head === undefined) return { version: 0, snapshot: undefined, events: [] };
      const snapshot =
        useSnapshot && head.snapshot !== null && head.snapshot_version !== null
          ? { version: Number(head.snapshot_version), state: String(head.snapshot) }
          : undefined;
      const from = Math.max(fromVersion, snapshot === undefined ? 1 : snapshot.version + 1);
      const { rows } = await run(
        'stream load',
        streamSql,
        [streamId, from, limit, streamId, from, limit, limit],
        execute,
      );
      return { version: Number(head.version), snapshot, events: rows.map(toEntry) };
    },
    async appendToStream(tx, streamId, events, opts) {
      const { expected, snapshot } = checkStreamAppend(streamId, events, opts);
      const execute = execOf(tx);
      const at = now();
      if (events.length === 0) {
        const version = await versionLocked(execute, streamId);
        if (!expectationMet(expected, version)) throw new ConcurrencyError(streamId, expected, version);
        return { version: version ?? 0 };
      }
      const rows = encoder.encode(events, at).map((r) => keyedByStream(r, streamId));
      const k = rows.length;
      const snap = snapshot === undefined ? '' : ', snapshot = ?, snapshot_version = ?';
      const snapParams = snapshot === undefined ? [] : [snapshot.state, snapshot.version];
      let version: number;
      if (expected === 'no-stream' || expected === 0) {
        try {
          await execute(
            `INSERT INTO ${st} (stream_id, version, snapshot, snapshot_version, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)`,
            [streamId, k, snapshot?.state ?? null, snapshot?.version ?? null, at, at],
          );
        } catch (error) {
          if (classifyMysqlError(error) === 'unique-violation')
            throw new ConcurrencyError(streamId, expected, await versionLocked(execute, streamId));
          throw toStorageError(error, 'stream append');
        }
        version = k;
      } else if (expected === 'any') {
        await run(
          'stream append',
          `INSERT INTO ${st} (stream_id, version, snapshot, snapshot_version, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)
           ON DUPLICATE KEY UPDATE version = version + VALUES(version), updated_at = VALUES(updated_at)`,
          [streamId, k, null, null, at, at],
          execute,
        );
        version = (await versionLocked(execute, streamId))!;
      } else {
        const check = expected === 'stream-exists' ? '' : ' AND version = ?';
        const r = await run(
          'stream append',
          `UPDATE ${st} SET version = version + ?, updated_at = ?${snap} WHERE stream_id = ?${check}`,
          [k, at, ...snapParams, streamId, ...(expected === 'stream-exists' ? [] : [expected])],
          execute,
        );
        if (r.count === 0)
          throw new ConcurrencyError(streamId, expected, await versionLocked(execute, streamId));
        version = expected === 'stream-exists' ? (await versionLocked(execute, streamId))! : expected + k;
      }
      for (let i = 0; i < rows.length; i += CHUNK) {
        const part = rows.slice(i, i + CHUNK);
        const params: unknown[] = [];
        part.forEach((r, j) => {
          const p = r.payload;
          params.push(r.id, r.type, r.topic, r.key, Buffer.from(p.buffer, p.byteOffset, p.byteLength));
          params.push(JSON.stringify(r.headers), r.contentEncoding, r.createdAt, r.createdAt);
          params.push(streamId, version - k + i + j + 1);
        });
        await run(
          'stream append',
          `INSERT INTO ${t} (id, type, topic, \`key\`, payload, headers, content_encoding, next_attempt_at, created_at, stream_id, stream_version)
           VALUES ${part.map(() => '(?,?,?,?,?,?,?,?,?,?,?)').join(',')}`,
          params,
          execute,
        );
      }
      return { version };
    },
  };
  return store;
}
