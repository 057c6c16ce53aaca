import { ConfigurationError } from '../errors/cqrs-error.ts';

/** Table names accepted by SQL adapters: `name` or `schema.name`, lower-case identifiers. */
export const TABLE_NAME_RE = /^(?:[a-z_][a-z0-9_]{0,62}\.)?[a-z_][a-z0-9_]{0,62}$/;

/** Throws a ConfigurationError unless `name` matches {@link TABLE_NAME_RE}. */
export function assertTableName(name: unknown, what: string): string {
  if (typeof name !== 'string' || !TABLE_NAME_RE.test(name)) {
    throw new ConfigurationError(
      `${what}: invalid table name ${JSON.stringify(String(name).slice(0, 80))}; expected ${TABLE_NAME_RE}`,
    );
  }
  return name;
}

/** Table names of the SQL stores: `name` or `schema.name`, validated against {@link TABLE_NAME_RE}. */
export interface SqlTableNames {
  /** @default 'cqrs_outbox' */
  readonly outbox?: string;
  /** @default 'cqrs_inbox' */
  readonly inbox?: string;
  /** Saga rows. @default 'cqrs_saga' */
  readonly saga?: string;
  /** Saga log rows. @default 'cqrs_saga_log' */
  readonly sagaLog?: string;
}

/** The table names used when {@link SqlTableNames} leaves one out. */
export const DEFAULT_TABLE_NAMES: Readonly<Required<SqlTableNames>> = Object.freeze({
  outbox: 'cqrs_outbox',
  inbox: 'cqrs_inbox',
  saga: 'cqrs_saga',
  sagaLog: 'cqrs_saga_log',
});

const TABLE_LABELS: Readonly<Record<keyof SqlTableNames, string>> = {
  outbox: 'outbox table',
  inbox: 'inbox table',
  saga: 'saga table',
  sagaLog: 'saga log table',
};

/**
 * Every table name with its default applied, each checked by {@link assertTableName}.
 * @param adapter - names the adapter in error messages, e.g. `postgres`.
 * @throws ConfigurationError (`CQRS_CONFIGURATION`) for a name that is not a plain or schema-qualified identifier.
 */
export function resolveTableNames(
  tables: SqlTableNames | undefined,
  adapter: string,
): Readonly<Required<SqlTableNames>> {
  const t = tables ?? {};
  const out = {} as Record<keyof SqlTableNames, string>;
  for (const key of Object.keys(DEFAULT_TABLE_NAMES) as (keyof SqlTableNames)[]) {
    out[key] = assertTableName(t[key] ?? DEFAULT_TABLE_NAMES[key], `${adapter} ${TABLE_LABELS[key]}`);
  }
  return out;
}
