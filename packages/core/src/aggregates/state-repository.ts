import { ConcurrencyError, type ExpectedVersion } from '../errors/concurrency-error.ts';
import { ConfigurationError, SerializationError, ValidationError } from '../errors/cqrs-error.ts';
import { StorageError } from '../errors/storage-error.ts';
import type {
  InMemoryOutboxTransaction,
  InMemoryStoreTransaction,
} from '../outbox/in-memory-outbox-store.ts';
import { inMemoryTransactionOf, onInMemoryTransactionEnd } from '../outbox/in-memory-outbox-store.ts';
import { resolveTransaction, type TransactionSource } from './transaction-source.ts';

/** A state-based aggregate as loaded: its state and the version of its row. */
export interface VersionedState<TState> {
  readonly id: string;
  readonly state: TState;
  /** 1 after the first save, incremented by each save. */
  readonly version: number;
}

/** Arguments of {@link StateRepository.save} and `delete`. */
export interface StateWriteOptions {
  /**
   * The version the row must have: the version loaded, `0` or `'no-stream'` for a row that must not exist yet,
   * `'stream-exists'` for any existing row, `'any'` for no check (an upsert).
   */
  readonly expectedVersion: ExpectedVersion;
}

/**
 * Loads a state-based aggregate's row with its version and saves it with an expected-version check, in a
 * transaction: one you pass, or the unit of work's when you pass a handler's context. A lost race is a
 * ConcurrencyError: the loser wrote nothing.
 */
export interface StateRepository<TState, TTx> {
  readonly name: string;
  /** The row of `id` with its version, `undefined` when there is none. */
  load(tx: TransactionSource<TTx>, id: string): Promise<VersionedState<TState> | undefined>;
  /**
   * Writes the state if the row is still at `expectedVersion`; returns the new version.
   * @throws ConcurrencyError (`CQRS_CONCURRENCY`, expected and actual versions), ValidationError for a malformed
   *   id or expectation, StorageError
   */
  save(
    tx: TransactionSource<TTx>,
    id: string,
    state: TState,
    options: StateWriteOptions,
  ): Promise<{ readonly version: number }>;
  /** Deletes the row if it is still at `expectedVersion`. @throws ConcurrencyError, ValidationError, StorageError */
  delete(tx: TransactionSource<TTx>, id: string, options: StateWriteOptions): Promise<void>;
  /**
   * Loads the row, lets `change` compute the new state (given `undefined` when there is no row), and saves it
   * expecting the version it loaded. A writer that saved in between makes it fail with a ConcurrencyError.
   */
  update(
    tx: TransactionSource<TTx>,
    id: string,
    change: (
      state: TState | undefined,
      loaded: VersionedState<TState> | undefined,
    ) => TState | Promise<TState>,
  ): Promise<VersionedState<TState>>;
}

/**
 * The row operations a storage package implements for {@link createStateRepository}; each runs in `tx`. An
 * `expected` of `undefined` means "any version".
 */
export interface VersionedRowStore<TState, TTx> {
  read(tx: TTx, id: string): Promise<{ readonly state: TState; readonly version: number } | undefined>;
  /** Inserts at version 1; `false` when the row exists. */
  insert(tx: TTx, id: string, state: TState): Promise<boolean>;
  /** Updates the row at `expected` to the next version; the new version, or `undefined` when nothing matched. */
  update(tx: TTx, id: string, state: TState, expected: number | undefined): Promise<number | undefined>;
  /** Deletes the row at `expected`; `false` when nothing matched. */
  remove(tx: TTx, id: string, expected: number | undefined): Promise<boolean>;
  /** The row's version now (seeing other transactions' commits), `undefined` when there is none. */
  version(tx: TTx, id: string): Promise<number | undefined>;
}

/** Longest id of a state-based aggregate, in UTF-16 code units. */
export const MAX_STATE_ID_LENGTH = 255;

const checkId = (name: string, id: unknown): string => {
  if (
    typeof id !== 'string' ||
    id.length === 0 ||
    id.length > MAX_STATE_ID_LENGTH ||
    !id.isWellFormed() ||
    id.includes('\0')
  ) {
    throw new ValidationError(`${name} id`, [
      {
        path: ['id'],
        message: `must be 1 to ${MAX_STATE_ID_LENGTH} characters of well-formed text without NUL`,
        code: 'invalid_id',
      },
    ]);
  }
  return id;
};

const checkExpected = (name: string, options: StateWriteOptions | undefined): ExpectedVersion => {
  const e = (options as { expectedVersion?: unknown } | undefined)?.expectedVersion;
  if (
    e === 'no-stream' ||
    e === 'stream-exists' ||
    e === 'any' ||
    (Number.isSafeInteger(e) && (e as number) >= 0)
  )
    return e as ExpectedVersion;
  throw new ValidationError(`${name} write`, [
    {
      path: ['expectedVersion'],
      message: "must be a version (integer >= 0), 'no-stream', 'stream-exists' or 'any'",
      code: 'invalid_expected_version',
    },
  ]);
};

/**
 * Builds a {@link StateRepository} over a storage package's row operations: the expected-version rules and
 * the ConcurrencyError are here, the SQL is in the package.
 * @throws ConfigurationError for a missing name or operation
 */
export function createStateRepository<TState, TTx>(
  name: string,
  rows: VersionedRowStore<TState, TTx>,
): StateRepository<TState, TTx> {
  if (typeof name !== 'string' || name.length === 0 || name.length > 100)
    throw new ConfigurationError('state repository: name must be 1 to 100 characters');
  for (const op of ['read', 'insert', 'update', 'remove', 'version'] as const) {
    if (typeof rows?.[op] !== 'function')
      throw new ConfigurationError(`${name} repository: rows.${op} is missing`);
  }
  const conflict = async (tx: TTx, id: string, expected: ExpectedVersion) =>
    new ConcurrencyError(`${name} ${id}`, expected, await rows.version(tx, id));

  const save = async (tx: TTx, id: string, state: TState, expected: ExpectedVersion) => {
    if (expected === 0 || expected === 'no-stream') {
      if (await rows.insert(tx, id, state)) return 1;
      throw await conflict(tx, id, expected);
    }
    if (expected === 'any') {
      for (;;) {
        const v = await rows.update(tx, id, state, undefined);
        if (v !== undefined) return v;
        if (await rows.insert(tx, id, state)) return 1;
      }
    }
    const v = await rows.update(tx, id, state, expected === 'stream-exists' ? undefined : expected);
    if (v === undefined) throw await conflict(tx, id, expected);
    return v;
  };

  const txOf = (source: TransactionSource<TTx>) => resolveTransaction<TTx>(source, `${name} repository`).tx;
  const repository: StateRepository<TState, TTx> = {
    name,
    async load(source, id) {
      const tx = txOf(source);
      checkId(name, id);
      const row = await rows.read(tx, id);
      return row === undefined ? undefined : { id, state: row.state, version: row.version };
    },
    async save(source, id, state, options) {
      const tx = txOf(source);
      checkId(name, id);
      return { version: await save(tx, id, state, checkExpected(name, options)) };
    },
    async delete(source, id, options) {
      const tx = txOf(source);
      checkId(name, id);
      const expected = checkExpected(name, options);
      if (expected === 0 || expected === 'no-stream') {
        // "delete a row that must not exist" succeeds only when there is none
        const v = await rows.version(tx, id);
        if (v !== undefined) throw new ConcurrencyError(`${name} ${id}`, expected, v);
        return;
      }
      const removed = await rows.remove(tx, id, typeof expected === 'number' ? expected : undefined);
      if (!removed && expected !== 'any') throw await conflict(tx, id, expected);
    },
    async update(source, id, change) {
      const tx = txOf(source);
      checkId(name, id);
      const loaded = await repository.load(tx, id);
      const state = await change(loaded?.state, loaded);
      const version = await save(tx, id, state, loaded?.version ?? 0);
      return { id, state, version };
    },
  };
  return Object.freeze(repository);
}

const clone = <T>(name: string, value: T): T => {
  try {
    return structuredClone(value);
  } catch (cause) {
    throw new SerializationError(`${name}: the state cannot be stored (structuredClone failed)`, { cause });
  }
};

/** Options of {@link createInMemoryStateRepository}. */
export interface InMemoryStateRepositoryOptions {
  /** Names the aggregate type in errors. */
  readonly name: string;
}

/** The in-memory {@link StateRepository}, with a view of its committed rows for tests. */
export interface InMemoryStateRepository<TState> extends StateRepository<TState, InMemoryStoreTransaction> {
  /** Committed rows, by id. */
  rows(): ReadonlyMap<string, VersionedState<TState>>;
}

/**
 * State-based aggregates in process memory, in the transactions of an in-memory outbox store or unit of work
 * (saves become visible when the transaction commits, with its events). States are copied with `structuredClone`, as a
 * database would. A second transaction writing a row another one wrote waits for it to end, then checks the
 * version again.
 */
export function createInMemoryStateRepository<TState>(
  options: InMemoryStateRepositoryOptions,
): InMemoryStateRepository<TState> {
  const committed = new Map<string, { state: TState; version: number }>();
  const locks = new Map<string, { readonly tx: object; readonly ended: Promise<void> }>();
  const open = new WeakMap<
    object,
    {
      readonly rows: Map<string, { state: TState; version: number } | null>;
      readonly locked: Set<string>;
      readonly done: Promise<void>;
    }
  >();

  const outboxTx = (handle: InMemoryStoreTransaction): InMemoryOutboxTransaction => {
    const tx = inMemoryTransactionOf(handle);
    if (tx === undefined)
      throw new ConfigurationError(
        `${options.name}: not a transaction of an in-memory outbox or unit of work`,
      );
    return tx;
  };
  const txState = (tx: InMemoryOutboxTransaction) => {
    let state = open.get(tx);
    if (state !== undefined) return state;
    let resolve!: () => void;
    const done = new Promise<void>((r) => (resolve = r));
    const mine = {
      rows: new Map<string, { state: TState; version: number } | null>(),
      locked: new Set<string>(),
      done,
    };
    const registered = onInMemoryTransactionEnd(tx, {
      commit() {
        for (const [id, row] of mine.rows) {
          if (row === null) committed.delete(id);
          else committed.set(id, row);
        }
      },
      end() {
        for (const id of mine.locked) if (locks.get(id)?.tx === tx) locks.delete(id);
        open.delete(tx);
        resolve();
      },
    });
    if (!registered)
      throw new StorageError('closed-transaction', `${options.name}: not an open in-memory transaction`);
    open.set(tx, mine);
    state = mine;
    return state;
  };
  const current = (handle: InMemoryStoreTransaction, id: string) => {
    const mine = open.get(outboxTx(handle))?.rows;
    if (mine?.has(id)) return mine.get(id) ?? undefined;
    return committed.get(id);
  };
  /** Takes the row lock (waiting for another writer to end), then registers the write. */
  const lock = async (handle: InMemoryStoreTransaction, id: string) => {
    const tx = outboxTx(handle);
    const state = txState(tx);
    for (;;) {
      const held = locks.get(id);
      if (held === undefined || held.tx === tx) break;
      await held.ended;
    }
    if (!locks.has(id)) {
      locks.set(id, { tx, ended: state.done });
      state.locked.add(id);
    }
    return state;
  };
  const write = async (
    tx: InMemoryStoreTransaction,
    id: string,
    row: { state: TState; version: number } | null,
  ) => {
    (await lock(tx, id)).rows.set(
      id,
      row === null ? null : { state: clone(options.name, row.state), version: row.version },
    );
  };

  const repository = createStateRepository<TState, InMemoryStoreTransaction>(options.name, {
    async read(tx, id) {
      const row = current(tx, id);
      return row === undefined ? undefined : { state: clone(options.name, row.state), version: row.version };
    },
    async insert(tx, id, state) {
      await lock(tx, id);
      if (current(tx, id) !== undefined) return false;
      await write(tx, id, { state, version: 1 });
      return true;
    },
    async update(tx, id, state, expected) {
      await lock(tx, id);
      const row = current(tx, id);
      if (row === undefined || (expected !== undefined && row.version !== expected)) return undefined;
      await write(tx, id, { state, version: row.version + 1 });
      return row.version + 1;
    },
    async remove(tx, id, expected) {
      await lock(tx, id);
      const row = current(tx, id);
      if (row === undefined || (expected !== undefined && row.version !== expected)) return false;
      await write(tx, id, null);
      return true;
    },
    async version(tx, id) {
      return current(tx, id)?.version;
    },
  });
  return Object.freeze({
    ...repository,
    rows: () =>
      new Map(
        [...committed].map(
          ([id, r]) => [id, { id, state: clone(options.name, r.state), version: r.version }] as const,
        ),
      ),
  });
}
