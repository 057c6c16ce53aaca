/**
 * Shapes shared by the runner (parent process) and the case harness (child process).
 *
 * A suite is a list of cases measured the same way and reported with the same columns. Each case runs in its own
 * child process: the runner spawns `child.ts <suite> <case>`, which calls `suite.run(spec)` and sends the metrics
 * back over IPC. To add a suite (`publish`, `stream`, `outbox`, `broker`, `saga`, ...), write its case modules and
 * a `Suite` object with its own columns (e.g. `us_per_op`, `per_s`, `ms`), then list it in `suites/index.ts`.
 */

/** What a case reports: one number per column field, plus display-only fields. */
export type Metrics = Readonly<Record<string, number>>;

/** A column of the table. Columns with `json` (the default) are also written in `--json` mode. */
export interface Column {
  /** Metric field, also the JSON key: `ns_per_op`, `bytes_per_op`, `us_per_op`, `per_s`, `ms`, ... */
  readonly field: string;
  /** Table header. */
  readonly label: string;
  /** Decimals shown in the table and kept in JSON. */
  readonly digits: number;
  /** Text appended to the value in the table (e.g. `%`). */
  readonly suffix?: string;
  /** Written in `--json` mode. Default `true`. */
  readonly json?: boolean;
}

/** One case: its exact name, the module that implements it and the variant of that module to run. */
export interface CaseSpec {
  readonly name: string;
  /** The case whose figure this one is divided by in the ratio column. @default the suite's baseline case */
  readonly baseline?: string;
  /** `file:` URL of the case module (`.ts`, or `.mjs` for decorator-based peers). */
  readonly module: string;
  readonly variant: string;
  /** Extra environment of the case's process (cases run with `NODE_ENV=production` unless the caller set it). */
  readonly env?: Readonly<Record<string, string>>;
}

/** The ratio column: every case's `field` divided by the baseline case's. */
export interface Baseline {
  readonly case: string;
  readonly field: string;
  readonly label: string;
}

export interface Suite {
  readonly name: string;
  readonly description: string;
  readonly columns: readonly Column[];
  readonly baseline?: Baseline;
  /** Printed under the table (to stderr in `--json` mode). */
  readonly notes?: readonly string[];
  /** Node flags of the child processes. */
  readonly nodeFlags: readonly string[];
  /** Kill a case's child process after this long. */
  readonly timeoutMs: number;
  readonly cases: readonly CaseSpec[];
  /** Measures one case. Runs in the child process. */
  run(spec: CaseSpec): Promise<Metrics>;
}

/** The operation measured by operation-loop suites: awaited once per iteration. */
export type AsyncOp = () => Promise<unknown>;

/** What `setup(variant)` of an operation-loop case module resolves to. */
export interface AsyncOpCase {
  readonly op: AsyncOp;
  /** Releases what `setup` created (e.g. closes a Nest application context). */
  readonly close?: () => Promise<void> | void;
}

/** An operation-loop case module (`.ts` or `.mjs`). */
export interface AsyncOpCaseModule {
  setup(variant: string): Promise<AsyncOpCase>;
}

/** Message from the child process to the runner. */
export type ChildReport =
  | { readonly ok: true; readonly metrics: Metrics }
  | { readonly ok: false; readonly error: string };
