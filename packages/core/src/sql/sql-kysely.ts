/**
 * The part of a Kysely instance or `Transaction` the SQL adapters use to run raw SQL: `executeQuery` with a
 * raw query node (structural, so Kysely's types do not leak into the adapters' APIs).
 */
export interface KyselyExecutorLike {
  executeQuery(query: {
    readonly sql: string;
    readonly parameters: readonly unknown[];
    readonly query: {
      readonly kind: 'RawNode';
      readonly sqlFragments: readonly string[];
      readonly parameters: readonly [];
    };
    readonly queryId: { readonly queryId: string };
  }): Promise<{ rows: unknown[]; numAffectedRows?: bigint }>;
}

let queryIds = 0;

/** Runs `sql` with positional `parameters` on a Kysely executor; `count` is the affected rows, or the rows read. */
export async function executeKyselyQuery(
  executor: KyselyExecutorLike,
  sql: string,
  parameters: readonly unknown[],
): Promise<{ rows: Record<string, unknown>[]; count: number }> {
  const r = await executor.executeQuery({
    sql,
    parameters,
    query: { kind: 'RawNode', sqlFragments: [sql], parameters: [] },
    queryId: { queryId: `cqrs${++queryIds}` },
  });
  return { rows: r.rows as Record<string, unknown>[], count: Number(r.numAffectedRows ?? r.rows.length) };
}
