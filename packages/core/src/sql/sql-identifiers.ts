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
  /** Events moved out of the outbox by purge, still read as the event log. @default `<outbox>_archive` */
  readonly outboxArchive?: string;
  /** One row per event stream: its version and snapshot. @default `<outbox>_stream` */
  readonly stream?: string;
  /** Projection checkpoints and leases, one row per projection version. @default 'cqrs_projection' */
  readonly projection?: string;
  /** Documents of document projections. @default `<projection>_doc` */
  readonly projectionDocument?: string;
  /** Events projections parked. @default `<projection>_parked` */
  readonly projectionParked?: string;
}

/** The table names used when {@link SqlTableNames} leaves one out. */
export const DEFAULT_TABLE_NAMES: Readonly<Required<SqlTableNames>> = Object.freeze({
  outbox: 'cqrs_outbox',
  inbox: 'cqrs_inbox',
  saga: 'cqrs_saga',
  sagaLog: 'cqrs_saga_log',
  outboxArchive: 'cqrs_outbox_archive',
  stream: 'cqrs_outbox_stream',
  projection: 'cqrs_projection',
  projectionDocument: 'cqrs_projection_doc',
  projectionParked: 'cqrs_projection_parked',
});

/** Tables whose default name follows another's (the outbox's, the projection table's), so each has its own. */
const DERIVED: Partial<Record<keyof SqlTableNames, readonly [keyof SqlTableNames, string]>> = {
  outboxArchive: ['outbox', '_archive'],
  stream: ['outbox', '_stream'],
  projectionDocument: ['projection', '_doc'],
  projectionParked: ['projection', '_parked'],
};

const TABLE_LABELS: Readonly<Record<keyof SqlTableNames, string>> = {
  outbox: 'outbox table',
  inbox: 'inbox table',
  saga: 'saga table',
  sagaLog: 'saga log table',
  outboxArchive: 'outbox archive table',
  stream: 'stream table',
  projection: 'projection table',
  projectionDocument: 'projection document table',
  projectionParked: 'projection parked table',
};

/**
 * Every table name with its default applied, each checked by {@link assertTableName}. The archive and stream
 * tables default to the outbox table's name with `_archive` and `_stream` appended, the projection document
 * and parked tables to the projection table's with `_doc` and `_parked`.
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
    const derived = DERIVED[key];
    const base = derived === undefined ? undefined : t[derived[0]];
    const fallback = base !== undefined ? `${base}${derived![1]}` : DEFAULT_TABLE_NAMES[key];
    out[key] = assertTableName(t[key] ?? fallback, `${adapter} ${TABLE_LABELS[key]}`);
  }
  return out;
}
