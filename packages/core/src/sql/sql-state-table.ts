import { ConfigurationError, SerializationError } from '../errors/cqrs-error.ts';

/**
 * Options of the SQL state repositories (`createPostgresStateRepository`, `createMysqlStateRepository`,
 * `createSqliteStateRepository`): the table of yours they read and write, and how a state maps to its columns.
 */
export interface StateTableOptions<TState> {
  /** Names the aggregate type in errors, e.g. `account`. */
  readonly name: string;
  /** The table: `name` or `schema.name`. It needs a primary key (or unique index) on the id column. */
  readonly table: string;
  /** @default 'id' */
  readonly idColumn?: string;
  /** An integer column the repository owns: 1 after the first save, incremented by each. @default 'version' */
  readonly versionColumn?: string;
  /**
   * The state's columns, written from `toRow` and read back by `fromRow`. Default: one JSON text column,
   * `state` (JSON.stringify / JSON.parse; JSONB on Postgres, JSON on MariaDB work too).
   */
  readonly columns?: readonly string[];
  /** The column values of a state (a key for every column of `columns`). Required with `columns`. */
  readonly toRow?: (state: TState) => Readonly<Record<string, unknown>>;
  /** The state of a row (its `columns`, as the driver returns them). Required with `columns`. */
  readonly fromRow?: (row: Readonly<Record<string, unknown>>) => TState;
}

/** {@link StateTableOptions} resolved: quoted identifiers and row mappers. */
export interface StateColumns<TState> {
  readonly id: string;
  readonly version: string;
  readonly columns: readonly string[];
  /** Values in the order of `columns`. @throws SerializationError */
  toRow(state: TState): unknown[];
  fromRow(row: Readonly<Record<string, unknown>>): TState;
}

const COLUMN_RE = /^[a-z_][a-z0-9_]{0,62}$/;

/**
 * Checks and resolves {@link StateTableOptions}; `quote` quotes an identifier for the dialect.
 * @throws ConfigurationError for a malformed column name, duplicate columns or a missing mapper
 */
export function stateColumns<TState>(
  options: StateTableOptions<TState>,
  quote: (identifier: string) => string,
): StateColumns<TState> {
  const label = `state repository ${String(options?.name).slice(0, 100)}`;
  if (typeof options?.name !== 'string' || options.name.length === 0 || options.name.length > 100)
    throw new ConfigurationError('state repository: name must be 1 to 100 characters');
  const column = (value: unknown, what: string): string => {
    if (typeof value !== 'string' || !COLUMN_RE.test(value))
      throw new ConfigurationError(
        `${label}: ${what} must be a lower-case identifier, got ${JSON.stringify(String(value).slice(0, 80))}`,
      );
    return value;
  };
  const id = column(options.idColumn ?? 'id', 'idColumn');
  const version = column(options.versionColumn ?? 'version', 'versionColumn');
  const name = options.name;
  if (options.columns === undefined) {
    if (options.toRow !== undefined || options.fromRow !== undefined)
      throw new ConfigurationError(`${label}: toRow and fromRow need columns`);
    return {
      id: quote(id),
      version: quote(version),
      columns: [quote('state')],
      toRow(state) {
        let json: string | undefined;
        try {
          json = JSON.stringify(state);
        } catch (cause) {
          throw new SerializationError(`${name}: the state cannot be serialized to JSON`, { cause });
        }
        if (json === undefined)
          throw new SerializationError(`${name}: the state cannot be serialized to JSON`);
        return [json];
      },
      fromRow(row) {
        const value = row.state;
        if (typeof value !== 'string') return value as TState;
        try {
          return JSON.parse(value) as TState;
        } catch (cause) {
          throw new SerializationError(`${name}: a stored state is not JSON`, { cause });
        }
      },
    };
  }
  if (!Array.isArray(options.columns) || options.columns.length === 0)
    throw new ConfigurationError(`${label}: columns must list at least one column`);
  const columns = options.columns.map((c, i) => column(c, `columns[${i}]`));
  if (new Set([id, version, ...columns]).size !== columns.length + 2)
    throw new ConfigurationError(`${label}: the id, version and state columns must differ`);
  const { toRow, fromRow } = options;
  if (typeof toRow !== 'function' || typeof fromRow !== 'function')
    throw new ConfigurationError(`${label}: columns need toRow and fromRow`);
  return {
    id: quote(id),
    version: quote(version),
    columns: columns.map(quote),
    toRow(state) {
      const row = toRow(state);
      const missing = columns.filter((c) => row === null || typeof row !== 'object' || !(c in row));
      if (missing.length > 0)
        throw new SerializationError(`${name}: toRow left out column(s) ${missing.join(', ')}`);
      return columns.map((c) => row[c]);
    },
    fromRow,
  };
}
