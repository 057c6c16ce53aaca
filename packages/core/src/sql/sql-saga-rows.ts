import {
  ConfigurationError,
  SerializationError,
  ValidationError,
  type ValidationIssue,
} from '../errors/cqrs-error.ts';
import { PayloadTooLargeError } from '../errors/storage-error.ts';
import { SagaConflictError } from '../saga/saga-errors.ts';
import type {
  SagaAcquire,
  SagaCommit,
  SagaCreate,
  SagaListQuery,
  SagaLogEntry,
  SagaRecord,
  SagaRecoveryQuery,
  SagaStatus,
} from '../saga/saga-store.ts';
import { SAGA_STATUSES } from '../saga/saga-store.ts';

/**
 * Helpers shared by the SQL saga stores (Postgres, MariaDB/MySQL, SQLite): input checks before a write, and
 * mapping of snake_case rows (as the adapters' migrations create them) back to records, with checks, so a
 * corrupted row is a typed error rather than a wrong value. Exported by `@cqrs-ts/core/sql`.
 * @module
 */

const STATUS_SET = new Set<string>(SAGA_STATUSES);

/** Longest id, name, owner or step id the SQL stores accept (UTF-16 code units; they are VARCHAR(255) in MariaDB). */
export const SAGA_MAX_KEY_LENGTH = 255;
/** Default upper bound, in UTF-8 bytes, of a context, result or error text. */
export const SAGA_DEFAULT_MAX_TEXT_BYTES = 4 * 1024 * 1024;

const issue = (path: (string | number)[], message: string, code: string): ValidationIssue => ({
  path,
  message,
  code,
});

// Lone surrogates cannot be encoded as UTF-8 (drivers would replace them) and Postgres TEXT rejects NUL:
// JSON.stringify output never contains either.
const storable = (s: string) => s.isWellFormed() && !s.includes('\0');

/**
 * Checks what a SQL saga store is about to write. Throws a ValidationError (`CQRS_VALIDATION`, every issue
 * listed) for a wrong type, a non-integer number, an unknown status or action, a key longer than
 * {@link SAGA_MAX_KEY_LENGTH} or a text that is not storable (lone surrogate, NUL); a PayloadTooLargeError
 * (`CQRS_PAYLOAD_TOO_LARGE`) for a text longer than `maxTextBytes` UTF-8 bytes. Nothing has been written then.
 */
export function checkSagaWrite(
  kind: 'create' | 'commit' | 'acquire',
  input: SagaCreate | SagaCommit | SagaAcquire,
  maxTextBytes: number,
): void {
  const issues: ValidationIssue[] = [];
  const o = input as unknown as Record<string, unknown>;
  const key = (name: string, value: unknown, path: (string | number)[] = [name]) => {
    if (typeof value !== 'string' || value.length === 0) {
      issues.push(issue(path, 'must be a non-empty string', 'invalid_type'));
    } else if (value.length > SAGA_MAX_KEY_LENGTH || !storable(value)) {
      issues.push(
        issue(
          path,
          `must be at most ${SAGA_MAX_KEY_LENGTH} characters of well-formed text`,
          'invalid_string',
        ),
      );
    }
  };
  const int = (value: unknown, path: (string | number)[], nullable = false) => {
    if (nullable && value === null) return;
    if (!Number.isSafeInteger(value)) issues.push(issue(path, 'must be a safe integer', 'invalid_type'));
  };
  const text = (value: unknown, path: (string | number)[], nullable: boolean) => {
    if (nullable && value === null) return;
    if (typeof value !== 'string') {
      issues.push(issue(path, nullable ? 'must be a string or null' : 'must be a string', 'invalid_type'));
      return;
    }
    // UTF-8 needs at most 3 bytes per UTF-16 code unit: measure only when the bound could be passed.
    if (value.length * 3 > maxTextBytes) {
      const bytes = Buffer.byteLength(value, 'utf8');
      if (bytes > maxTextBytes) {
        throw new PayloadTooLargeError(
          `saga ${String(o.id).slice(0, 80)} ${path.join('.')}`,
          bytes,
          maxTextBytes,
        );
      }
    }
    if (!storable(value)) {
      issues.push(issue(path, 'contains a lone surrogate or a NUL character', 'invalid_string'));
    }
  };
  if (typeof input !== 'object' || input === null) {
    throw new ValidationError(`saga store ${kind}`, [issue([], 'must be an object', 'invalid_type')]);
  }
  key('id', o.id);
  key('owner', o.owner);
  int(o.now, ['now']);
  if (kind === 'create') {
    key('name', o.name);
    int(o.definitionVersion, ['definitionVersion']);
    text(o.context, ['context'], false);
    int(o.leaseMs, ['leaseMs']);
    int(o.deadlineAt, ['deadlineAt'], true);
  } else if (kind === 'acquire') {
    int(o.leaseMs, ['leaseMs']);
    if (o.expectedVersion !== undefined) int(o.expectedVersion, ['expectedVersion']);
  } else {
    const w = input as SagaCommit;
    int(w.expectedVersion, ['expectedVersion']);
    if (!STATUS_SET.has(w.status))
      issues.push(issue(['status'], 'is not a saga status', 'invalid_enum_value'));
    text(w.context, ['context'], false);
    int(w.cursor, ['cursor']);
    text(w.error, ['error'], true);
    if (typeof w.lease === 'object' && w.lease !== null) int(w.lease.retryAt, ['lease', 'retryAt']);
    else if (w.lease !== 'release') int(w.lease, ['lease']);
    if (!Array.isArray(w.log)) issues.push(issue(['log'], 'must be an array', 'invalid_type'));
    else {
      for (let i = 0; i < w.log.length; i++) {
        const e = w.log[i]!;
        if (typeof e !== 'object' || e === null) {
          issues.push(issue(['log', i], 'must be an object', 'invalid_type'));
          continue;
        }
        key('stepId', e.stepId, ['log', i, 'stepId']);
        int(e.slot, ['log', i, 'slot']);
        if (e.action !== 'act' && e.action !== 'compensate') {
          issues.push(issue(['log', i, 'action'], 'must be act or compensate', 'invalid_enum_value'));
        }
        if (e.status !== 'completed' && e.status !== 'failed') {
          issues.push(issue(['log', i, 'status'], 'must be completed or failed', 'invalid_enum_value'));
        }
        int(e.attempts, ['log', i, 'attempts']);
        text(e.result, ['log', i, 'result'], true);
        text(e.error, ['log', i, 'error'], true);
        int(e.startedAt, ['log', i, 'startedAt']);
        int(e.at, ['log', i, 'at']);
      }
    }
    if (w.events !== undefined && !Array.isArray(w.events)) {
      issues.push(issue(['events'], 'must be an array', 'invalid_type'));
    }
  }
  if (issues.length > 0) throw new ValidationError(`saga store ${kind}`, issues);
}

/**
 * The lease columns a {@link SagaCommit} writes: `lease_until` and whether `lease_owner` is kept (a number
 * extends the lease) or cleared (`release`, `{ retryAt }`).
 */
export function sagaCommitLease(w: SagaCommit): {
  readonly until: number | null;
  readonly keepOwner: boolean;
} {
  if (w.lease === 'release') return { until: null, keepOwner: false };
  if (typeof w.lease === 'number') return { until: w.now + w.lease, keepOwner: true };
  return { until: w.lease.retryAt, keepOwner: false };
}

/** Checks a recovery or list query (limit >= 1, lists are arrays). */
export function checkSagaQuery(
  kind: 'findRecoverable' | 'list' | 'count',
  q: SagaRecoveryQuery | SagaListQuery,
): void {
  const issues: ValidationIssue[] = [];
  const o = q as unknown as Record<string, unknown>;
  if (!Number.isSafeInteger(o.limit) || (o.limit as number) < 1) {
    issues.push(issue(['limit'], 'must be an integer >= 1', 'too_small'));
  }
  for (const k of ['now', 'staleAfterMs', 'maxAttempts'] as const) {
    if (o[k] !== undefined && !Number.isSafeInteger(o[k])) {
      issues.push(issue([k], 'must be a safe integer', 'invalid_type'));
    }
  }
  for (const k of ['names', 'statuses'] as const) {
    const v = o[k];
    if (v !== undefined && (!Array.isArray(v) || v.some((x) => typeof x !== 'string'))) {
      issues.push(issue([k], 'must be an array of strings', 'invalid_type'));
    }
  }
  if (o.afterId !== undefined && typeof o.afterId !== 'string') {
    issues.push(issue(['afterId'], 'must be a string', 'invalid_type'));
  }
  if (issues.length > 0) throw new ValidationError(`saga store ${kind}`, issues);
}

const corrupted = (what: string, id: unknown, column: string, value: unknown): never => {
  const shown = typeof value === 'string' ? JSON.stringify(value.slice(0, 80)) : String(value);
  throw new SerializationError(
    `${what} ${typeof id === 'string' ? id.slice(0, 80) : String(id)} is corrupted: column ${column} holds ${shown}`,
  );
};

/** Drivers return BIGINT as number, string or bigint. */
const toInt = (v: unknown): number | undefined => {
  if (typeof v === 'number') return Number.isSafeInteger(v) ? v : undefined;
  if (typeof v === 'bigint')
    return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER)
      ? Number(v)
      : undefined;
  if (typeof v === 'string' && /^-?\d{1,16}$/.test(v)) {
    const n = Number(v);
    return Number.isSafeInteger(n) ? n : undefined;
  }
  return undefined;
};

/**
 * Maps a saga table row (`id, name, definition_version, status, context, cursor, version, attempts, error,
 * lease_owner, lease_until, deadline_at, created_at, updated_at`) to a frozen {@link SagaRecord}.
 * @throws SerializationError (`CQRS_SERIALIZATION`) naming the saga and column when a value has the wrong type
 *   or the status is unknown.
 */
export function sagaRecordFromRow(r: Readonly<Record<string, unknown>>): SagaRecord {
  const id = r.id;
  const what = 'saga row';
  const str = (c: string): string => {
    const v = r[c];
    return typeof v === 'string' ? v : corrupted(what, id, c, v);
  };
  const strOrNull = (c: string): string | null => {
    const v = r[c];
    return v === null || typeof v === 'string' ? v : corrupted(what, id, c, v);
  };
  const int = (c: string): number => toInt(r[c]) ?? corrupted(what, id, c, r[c]);
  const intOrNull = (c: string): number | null => (r[c] === null ? null : int(c));
  if (typeof id !== 'string') corrupted(what, id, 'id', id);
  const status = str('status');
  if (!STATUS_SET.has(status)) corrupted(what, id, 'status', status);
  return Object.freeze({
    id: id as string,
    name: str('name'),
    definitionVersion: int('definition_version'),
    status: status as SagaStatus,
    context: str('context'),
    cursor: int('cursor'),
    version: int('version'),
    attempts: int('attempts'),
    error: strOrNull('error'),
    leaseOwner: strOrNull('lease_owner'),
    leaseUntil: intOrNull('lease_until'),
    deadlineAt: intOrNull('deadline_at'),
    createdAt: int('created_at'),
    updatedAt: int('updated_at'),
  });
}

/**
 * Maps a saga log row (`seq, saga_id, step_id, slot, action, status, attempts, result, error, started_at, at`)
 * to a frozen {@link SagaLogEntry}.
 * @throws SerializationError (`CQRS_SERIALIZATION`) naming the saga, seq and column when a value is invalid.
 */
export function sagaLogEntryFromRow(r: Readonly<Record<string, unknown>>): SagaLogEntry {
  const what = `saga log row ${String(r.seq)} of saga`;
  const id = r.saga_id;
  const str = (c: string): string => {
    const v = r[c];
    return typeof v === 'string' ? v : corrupted(what, id, c, v);
  };
  const strOrNull = (c: string): string | null => {
    const v = r[c];
    return v === null || typeof v === 'string' ? v : corrupted(what, id, c, v);
  };
  const int = (c: string): number => toInt(r[c]) ?? corrupted(what, id, c, r[c]);
  const action = str('action');
  if (action !== 'act' && action !== 'compensate') corrupted(what, id, 'action', action);
  const status = str('status');
  if (status !== 'completed' && status !== 'failed') corrupted(what, id, 'status', status);
  return Object.freeze({
    seq: int('seq'),
    sagaId: str('saga_id'),
    stepId: str('step_id'),
    slot: int('slot'),
    action: action as SagaLogEntry['action'],
    status: status as SagaLogEntry['status'],
    attempts: int('attempts'),
    result: strOrNull('result'),
    error: strOrNull('error'),
    startedAt: int('started_at'),
    at: int('at'),
  });
}

/**
 * Maps the rows of a multi-row read (recovery, listing) with `map`; a row that cannot be mapped is left out and
 * handed to `onCorrupt` (default: a process warning), so one corrupted saga never blocks the others.
 */
export function mapSagaRows<T>(
  rows: readonly Readonly<Record<string, unknown>>[],
  map: (row: Readonly<Record<string, unknown>>) => T,
  onCorrupt: ((error: SerializationError) => void) | undefined,
): T[] {
  const out: T[] = [];
  for (const row of rows) {
    try {
      out.push(map(row));
    } catch (error) {
      if (!(error instanceof SerializationError)) throw error;
      if (onCorrupt !== undefined) onCorrupt(error);
      else process.emitWarning(error.message, { code: 'CQRS_SERIALIZATION' });
    }
  }
  return out;
}

/** A parameterized SQL query with `?` placeholders (MySQL/MariaDB, SQLite). */
export interface PositionalQuery {
  readonly sql: string;
  readonly params: (string | number)[];
}

const marks = (n: number): string => Array.from({ length: n }, () => '?').join(',');

/**
 * The recovery query of {@link SagaStore.findRecoverable} for `?`-placeholder dialects, over a saga table with
 * the shared column names. `columns` is the select list.
 */
export function sagaRecoverableQuery(table: string, columns: string, q: SagaRecoveryQuery): PositionalQuery {
  const params: (string | number)[] = [q.now, q.now, q.now - (q.staleAfterMs ?? 0)];
  let where = '';
  if (q.names !== undefined) {
    where += ` AND name IN (${marks(q.names.length)})`;
    params.push(...q.names);
  }
  if (q.maxAttempts !== undefined) {
    where += ' AND attempts < ?';
    params.push(q.maxAttempts);
  }
  params.push(q.limit);
  return {
    sql: `SELECT ${columns} FROM ${table} WHERE (status IN ('running', 'compensating')
        AND (lease_owner IS NULL OR lease_until < ?) OR status = 'compensation_failed' AND lease_until < ?)
        AND updated_at <= ?${where} ORDER BY updated_at, id LIMIT ?`,
    params,
  };
}

/** The query of {@link SagaStore.list} for `?`-placeholder dialects. */
export function sagaListQuery(table: string, columns: string, q: SagaListQuery): PositionalQuery {
  const params: (string | number)[] = [];
  const where: string[] = [];
  if (q.statuses !== undefined) {
    where.push(`status IN (${marks(q.statuses.length)})`);
    params.push(...q.statuses);
  }
  if (q.names !== undefined) {
    where.push(`name IN (${marks(q.names.length)})`);
    params.push(...q.names);
  }
  if (q.afterId !== undefined) {
    where.push('id > ?');
    params.push(q.afterId);
  }
  params.push(q.limit);
  return {
    sql: `SELECT ${columns} FROM ${table}${where.length > 0 ? ` WHERE ${where.join(' AND ')}` : ''} ORDER BY id LIMIT ?`,
    params,
  };
}

/** The grouped count of `SagaStore.count` with `?` placeholders (MariaDB, SQLite): rows of `status` and `n`. */
export function sagaCountQuery(table: string, q: { readonly names?: readonly string[] }): PositionalQuery {
  const names = q.names ?? [];
  return {
    sql: `SELECT status, COUNT(*) AS n FROM ${table}${q.names === undefined ? '' : ` WHERE name IN (${marks(names.length)})`} GROUP BY status`,
    params: [...names],
  };
}

/** Options every SQL saga store takes besides its client, tables and outbox. */
export interface SqlSagaStoreOptions {
  /**
   * Largest context, result or error text accepted, in UTF-8 bytes; a larger one is refused with a
   * PayloadTooLargeError before anything is written. @default 4 MiB
   */
  readonly maxTextBytes?: number;
  /**
   * Called with the SerializationError of each row `findRecoverable` or `list` cannot map (a corrupted row);
   * the row is left out and the other rows are returned. `load`, `acquire` and `history` throw it instead.
   * @default a process warning
   */
  readonly onCorruptRow?: (error: Error) => void;
}

/**
 * The `maxTextBytes` (default {@link SAGA_DEFAULT_MAX_TEXT_BYTES}) and `onCorruptRow` of an SQL saga store.
 * @throws ConfigurationError (`CQRS_CONFIGURATION`) unless `maxTextBytes` is a positive integer.
 */
export function resolveSqlSagaStoreOptions(
  options: SqlSagaStoreOptions,
  adapter: string,
): { readonly maxTextBytes: number; readonly onCorruptRow: ((error: Error) => void) | undefined } {
  const maxTextBytes = options.maxTextBytes ?? SAGA_DEFAULT_MAX_TEXT_BYTES;
  if (!(Number.isSafeInteger(maxTextBytes) && maxTextBytes > 0)) {
    throw new ConfigurationError(`${adapter} saga store: maxTextBytes must be a positive integer`);
  }
  return { maxTextBytes, onCorruptRow: options.onCorruptRow };
}

/**
 * Why a guarded write was refused, from the saga's current row (`undefined`: read failed or the saga is gone)
 * as a {@link SagaConflictError}: not found, another version, or a lease held by someone else.
 */
export function sagaConflictError(
  write: { readonly id: string; readonly owner: string; readonly expectedVersion: number },
  row: Readonly<Record<string, unknown>> | undefined | 'unread',
): SagaConflictError {
  let why = 'guard failed';
  if (row === undefined) why = 'not found';
  else if (row !== 'unread') {
    if (Number(row.version) !== write.expectedVersion) {
      why = `version ${String(row.version)}, expected ${write.expectedVersion}`;
    } else if (row.lease_owner !== write.owner) why = `lease is not held by ${write.owner}`;
  }
  return new SagaConflictError(write.id, why);
}

/**
 * Parameters of the INSERT of a new saga row, in the column order the adapters use: id, name,
 * definition_version, context, lease_owner, lease_until, deadline_at, created_at, updated_at.
 */
export function sagaInsertParams(input: SagaCreate): unknown[] {
  return [
    input.id,
    input.name,
    input.definitionVersion,
    input.context,
    input.owner,
    input.now + input.leaseMs,
    input.deadlineAt,
    input.now,
    input.now,
  ];
}

/**
 * Parameters of the guarded lease take of the `?`-placeholder dialects: `SET lease_owner = ?, lease_until = ?,
 * updated_at = ?` then `WHERE id = ? AND (lease_owner IS NULL OR lease_owner = ? OR lease_until < ?) AND (? IS
 * NULL OR version = ?)`.
 */
export function sagaAcquireParams(request: SagaAcquire): unknown[] {
  const version = request.expectedVersion ?? null;
  return [
    request.owner,
    request.now + request.leaseMs,
    request.now,
    request.id,
    request.owner,
    request.now,
    version,
    version,
  ];
}

/** The columns of a saga log row, in the order the adapters select them. */
export const SAGA_LOG_COLUMNS =
  'seq, saga_id, step_id, slot, action, status, attempts, result, error, started_at, at';

/**
 * The single-row statements of the `?`-placeholder dialects (MariaDB/MySQL, SQLite): renew and release a lease
 * (`[until, id, owner, version]` and `[id, owner, version]`), load a saga (`[id]`), read its log (`[id]`).
 * `columns` is the select list of a saga row.
 */
export function sagaPositionalStatements(
  table: string,
  logTable: string,
  columns: string,
): { readonly renew: string; readonly release: string; readonly load: string; readonly history: string } {
  return {
    renew: `UPDATE ${table} SET lease_until = ? WHERE id = ? AND lease_owner = ? AND version = ?`,
    release: `UPDATE ${table} SET lease_owner = NULL, lease_until = NULL WHERE id = ? AND lease_owner = ? AND version = ?`,
    load: `SELECT ${columns} FROM ${table} WHERE id = ?`,
    history: `SELECT ${SAGA_LOG_COLUMNS} FROM ${logTable} WHERE saga_id = ? ORDER BY seq`,
  };
}
