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
