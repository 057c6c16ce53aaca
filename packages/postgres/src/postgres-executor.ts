import type { KyselyExecutor, PgQueryable, PostgresClient, PostgresJsSql } from './postgres-options.ts';

/** Uniform query function over the supported clients. @internal */
export type Execute = (
  sql: string,
  params: readonly unknown[],
) => Promise<{ rows: Record<string, unknown>[]; count: number }>;

let queryIds = 0;

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
    const r = await p.query(sql, parameters as unknown[]);
    return { rows: r.rows as Record<string, unknown>[], count: r.rowCount ?? 0 };
  };
}
