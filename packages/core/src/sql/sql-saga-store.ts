import { ConfigurationError } from '../errors/cqrs-error.ts';
import type { AnyEvent } from '../messages/message.ts';
import { SagaConflictError } from '../saga/saga-errors.ts';
import type {
  SagaAcquire,
  SagaCommit,
  SagaCountQuery,
  SagaCreate,
  SagaListQuery,
  SagaRecoveryQuery,
  SagaRelease,
  SagaRenew,
  SagaStatus,
  SagaStore,
} from '../saga/saga-store.ts';
import { SAGA_STATUSES } from '../saga/saga-store.ts';
import {
  checkSagaQuery,
  checkSagaWrite,
  mapSagaRows,
  resolveSqlSagaStoreOptions,
  type SqlSagaStoreOptions,
  sagaConflictError,
  sagaLogEntryFromRow,
  sagaRecordFromRow,
} from './sql-saga-rows.ts';

type Row = Readonly<Record<string, unknown>>;

/**
 * The statements of one SQL dialect behind a saga store: each runs on the adapter's connection and resolves to
 * raw rows or to whether its guard held. Inputs are already checked when they are called.
 */
export interface SqlSagaStatements {
  /** Inserts a running saga holding the lease; `false` when a saga with this id exists. */
  create(input: SagaCreate): Promise<boolean>;
  /**
   * The guarded update (id, version, lease owner), the log rows and, with `events`, the outbox append, in one
   * transaction; `false` (nothing written) when the guard refused.
   */
  commit(write: SagaCommit, events: readonly AnyEvent[]): Promise<boolean>;
  /** Takes an expired or free lease (at `expectedVersion` when given); the row after it, `undefined` when refused. */
  acquire(request: SagaAcquire): Promise<Row | undefined>;
  renew(request: SagaRenew): Promise<boolean>;
  release(request: SagaRelease): Promise<boolean>;
  load(id: string): Promise<Row | undefined>;
  /** The saga's log rows ordered by `seq`. */
  history(id: string): Promise<readonly Row[]>;
  recoverable(query: SagaRecoveryQuery): Promise<readonly Row[]>;
  list(query: SagaListQuery): Promise<readonly Row[]>;
  /** Optional: `status` and `n` (the count) per status present, of the sagas with one of `names` (any when undefined). */
  count?(query: SagaCountQuery): Promise<readonly Row[]>;
}

/** What {@link createSqlSagaStore} needs from an SQL adapter. */
export interface SqlSagaStoreSpec extends SqlSagaStoreOptions {
  /** Names the adapter in error messages, e.g. `postgres`. */
  readonly adapter: string;
  /** The store stages step events in an outbox (`capabilities.outbox`). */
  readonly outbox: boolean;
  readonly statements: SqlSagaStatements;
  /** The adapter's classification of driver errors (see `createStorageErrorMapper`). */
  readonly toStorageError: (error: unknown, what: string) => Error;
}

/**
 * A {@link SagaStore} over an adapter's statements: what every SQL saga store does the same way. Checks inputs
 * before anything is written, refuses step events without an outbox, explains a refused write
 * (`SagaConflictError`: not found, another version, a lease held by someone else), maps rows (a corrupted row
 * of a list goes to `onCorruptRow`), and turns driver errors into `StorageError`s named `saga <operation>`.
 * @throws ConfigurationError for a bad `maxTextBytes`.
 */
export function createSqlSagaStore(spec: SqlSagaStoreSpec): SagaStore {
  const { statements: s, toStorageError } = spec;
  const { maxTextBytes, onCorruptRow } = resolveSqlSagaStoreOptions(spec, spec.adapter);
  const run = async <T>(what: string, fn: () => Promise<T>): Promise<T> => {
    try {
      return await fn();
    } catch (error) {
      throw toStorageError(error, `saga ${what}`);
    }
  };
  const conflict = async (write: { id: string; owner: string; expectedVersion: number }) => {
    try {
      return sagaConflictError(write, await s.load(write.id));
    } catch {
      return sagaConflictError(write, 'unread'); // the refusal stands; only the detail is missing
    }
  };
  const record = (row: Row | undefined) => (row === undefined ? undefined : sagaRecordFromRow(row));

  const store: SagaStore = {
    capabilities: Object.freeze({ outbox: spec.outbox }),
    async create(input) {
      checkSagaWrite('create', input, maxTextBytes);
      if (!(await run('create', () => s.create(input))))
        throw new SagaConflictError(input.id, 'already exists');
    },
    async commit(write) {
      checkSagaWrite('commit', write, maxTextBytes);
      const events = write.events ?? [];
      if (events.length > 0 && !spec.outbox) {
        throw new ConfigurationError('this saga store has no outbox: configure one to commit step events');
      }
      if (!(await run('commit', () => s.commit(write, events)))) throw await conflict(write);
      return write.expectedVersion + 1;
    },
    async acquire(request) {
      checkSagaWrite('acquire', request, maxTextBytes);
      return record(await run('acquire', () => s.acquire(request)));
    },
    renew: (request) => run('renew', () => s.renew(request)),
    release: (request) => run('release', () => s.release(request)),
    async load(id) {
      return record(await run('load', () => s.load(id)));
    },
    async history(id) {
      return (await run('history', () => s.history(id))).map(sagaLogEntryFromRow);
    },
    async findRecoverable(query) {
      checkSagaQuery('findRecoverable', query);
      if (query.names !== undefined && query.names.length === 0) return [];
      return mapSagaRows(
        await run('findRecoverable', () => s.recoverable(query)),
        sagaRecordFromRow,
        onCorruptRow,
      );
    },
    async list(query) {
      checkSagaQuery('list', query);
      if (query.statuses?.length === 0 || query.names?.length === 0) return [];
      return mapSagaRows(await run('list', () => s.list(query)), sagaRecordFromRow, onCorruptRow);
    },
  };
  const countRows = s.count?.bind(s);
  if (countRows !== undefined)
    store.count = async (query: SagaCountQuery = {}) => {
      checkSagaQuery('count', { limit: 1, ...(query.names === undefined ? {} : { names: query.names }) });
      const counts = Object.fromEntries(SAGA_STATUSES.map((st) => [st, 0])) as Record<SagaStatus, number>;
      if (query.names?.length === 0) return counts;
      for (const row of await run('count', () => countRows(query))) {
        const status = row.status as SagaStatus;
        // a status no record can hold is a corrupted row: it is not counted (list reports it)
        if (SAGA_STATUSES.includes(status)) counts[status] += Number(row.n);
      }
      return counts;
    };
  return store;
}
