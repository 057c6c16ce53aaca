import type { KyselyExecutor, PgQueryable, PostgresClient, PostgresJsSql } from './postgres-options.ts';

/** Uniform query function over the supported clients. @internal */
export type Execute = (
  sql: string,
  params: readonly unknown[],
) => Promise<{ rows: Record<string, unknown>[]; count: number }>;

let queryIds = 0;

const names = new Map<string, string>();
const MAX_NAMES = 512;

/**
 * A stable prepared-statement name per SQL text, so node-postgres parses and plans each statement once per
 * connection. Bounded: past {@link MAX_NAMES} distinct texts, new ones run unnamed. @internal
 */
export function statementName(sql: string): string | undefined {
  let name = names.get(sql);
  if (name === undefined) {
    if (names.size >= MAX_NAMES) return undefined;
    name = `cqrs_${names.size}`;
    names.set(sql, name);
  }
  return name;
}

/** Adapts pg, postgres.js or Kysely to {@link Execute}, by shape. @internal */
export function executorOf(client: PostgresClient): Execute {
  if (typeof (client as KyselyExecutor).executeQuery === 'function') {
    const k = client as KyselyExecutor;
    return async (sql, parameters) => {
      const r = await k.executeQuery({
        sql,
        parameters,
        query: { kind: 'RawNode', sqlFragments: [sql], parameters: [] },
        queryId: { queryId: `cqrs${++queryIds}` },
      });
      return { rows: r.rows as Record<string, unknown>[], count: Number(r.numAffectedRows ?? r.rows.length) };
    };
  }
  if (typeof (client as PostgresJsSql).unsafe === 'function') {
    const s = client as PostgresJsSql;
    return async (sql, parameters) => {
      const r = await s.unsafe(sql, parameters as unknown[]);
      return { rows: r as unknown as Record<string, unknown>[], count: r.count };
    };
  }
  const p = client as PgQueryable;
  return async (sql, parameters) => {
    const r = await p.query({
      name: statementName(sql),
      text: sql,
      values: parameters as unknown[],
    } as never);
    return { rows: r.rows as Record<string, unknown>[], count: r.rowCount ?? 0 };
  };
}
