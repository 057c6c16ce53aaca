/**
 * Benchmark runner: `npm run bench [-- --json] [--suite <name>] [--case <substring>] [--rounds <n>]`.
 *
 * Each case runs in its own child process (`child.ts`), one after the other, so cases cannot disturb each
 * other's JIT state, heap or registries. With several rounds (default 3) every case is run once per round,
 * round-robin, and each metric is the median over the rounds: a burst of noise from the machine then hits one
 * round of some cases instead of all samples of one case. Prints a table per suite, or with `--json` one line
 * per case:
 * `{"suite":"dispatch","case":"<name>","ns_per_op":N,"bytes_per_op":N}` (only those lines go to stdout;
 * progress and notes go to stderr).
 */
import { spawn } from 'node:child_process';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { formatFigure, roundFigure } from './lib/format.ts';
import { median } from './lib/samples.ts';
import type { CaseSpec, ChildReport, Metrics, Suite } from './lib/types.ts';
import { suites } from './suites/index.ts';

const CHILD = fileURLToPath(new URL('./child.ts', import.meta.url));
const SOURCE_CONDITION = '--conditions=@cqrs-ts/source';

const DEFAULT_ROUNDS = 3;

const USAGE = `usage: npm run bench -- [--json] [--suite <name>]... [--case <substring>]... [--rounds <n>]

  --json              one JSON object per case per line on stdout, nothing else
  --suite <name>      run only this suite (repeatable, or comma-separated): ${suites.map((s) => s.name).join(', ')}
  --case <substring>  run only cases whose name contains this text, case-insensitive (repeatable)
  --rounds <n>        processes per case, run round-robin; metrics are medians over rounds (default ${DEFAULT_ROUNDS})
  --list              list the cases and exit
  --help              show this help`;

interface Selection {
  readonly suite: Suite;
  readonly cases: readonly CaseSpec[];
}

interface CaseResult {
  readonly spec: CaseSpec;
  readonly metrics: Metrics | undefined;
}

interface Cli {
  readonly json: boolean;
  readonly list: boolean;
  readonly rounds: number;
  readonly selections: readonly Selection[];
}

function parseCli(): Cli {
  let values: {
    json?: boolean;
    list?: boolean;
    help?: boolean;
    suite?: string[];
    case?: string[];
    rounds?: string;
  };
  try {
    ({ values } = parseArgs({
      options: {
        json: { type: 'boolean' },
        list: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
        suite: { type: 'string', multiple: true },
        case: { type: 'string', multiple: true },
        rounds: { type: 'string' },
      },
      strict: true,
    }));
  } catch (error) {
    console.error(`${(error as Error).message}\n\n${USAGE}`);
    process.exit(2);
  }
  if (values.help) {
    console.log(USAGE);
    process.exit(0);
  }
  const rounds = values.rounds === undefined ? DEFAULT_ROUNDS : Number(values.rounds);
  if (!Number.isInteger(rounds) || rounds < 1) {
    console.error(`--rounds must be a positive integer, got ${values.rounds}`);
    process.exit(2);
  }
  const suiteNames = (values.suite ?? []).flatMap((s) => s.split(',')).map((s) => s.trim());
  const unknown = suiteNames.filter((n) => !suites.some((s) => s.name === n));
  if (unknown.length > 0) {
    console.error(`unknown suite ${unknown.join(', ')}; known: ${suites.map((s) => s.name).join(', ')}`);
    process.exit(2);
  }
  const needles = (values.case ?? []).map((c) => c.toLowerCase());
  const selections = suites
    .filter((s) => suiteNames.length === 0 || suiteNames.includes(s.name))
    .map((suite) => ({
      suite,
      cases: suite.cases.filter(
        (c) => needles.length === 0 || needles.some((n) => c.name.toLowerCase().includes(n)),
      ),
    }))
    .filter((s) => s.cases.length > 0);
  if (selections.length === 0) {
    console.error('no case matches the filters');
    process.exit(2);
  }
  return { json: values.json === true, list: values.list === true, rounds, selections };
}

function runChild(suite: Suite, spec: CaseSpec): Promise<ChildReport> {
  return new Promise((resolve) => {
    const child = spawn(
      process.execPath,
      [SOURCE_CONDITION, ...suite.nodeFlags, CHILD, suite.name, spec.name],
      {
        // The case's own stdout goes to stderr: in --json mode stdout carries the JSON lines only.
        stdio: ['ignore', 'pipe', 'inherit', 'ipc'],
        // Applications are measured as they run in production (cqrs-ts does not freeze messages there).
        env: { ...process.env, NODE_ENV: process.env.NODE_ENV ?? 'production', ...spec.env },
      },
    );
    child.stdout?.pipe(process.stderr, { end: false });
    let report: ChildReport | undefined;
    child.on('message', (message) => {
      report = message as ChildReport;
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), suite.timeoutMs);
    child.on('error', (error) => {
      clearTimeout(timer);
      resolve({ ok: false, error: error.message });
    });
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      resolve(report ?? { ok: false, error: `child exited (${signal ?? code}) without a result` });
    });
  });
}

function jsonLine(suite: Suite, result: CaseResult): string {
  const line: Record<string, string | number> = { suite: suite.name, case: result.spec.name };
  for (const column of suite.columns) {
    const value = result.metrics?.[column.field];
    const figure = column.json === false ? undefined : roundFigure(value, column.digits);
    if (figure !== undefined) line[column.field] = figure;
  }
  return JSON.stringify(line);
}

function table(suite: Suite, results: readonly CaseResult[]): string {
  const baseline = suite.baseline;
  const figure = (name: string) =>
    baseline && results.find((r) => r.spec.name === name)?.metrics?.[baseline.field];
  const base = baseline && figure(baseline.case);
  const others = new Set<string>();
  const header = ['case', ...suite.columns.map((c) => c.label), ...(baseline ? [baseline.label] : [])];
  const rows = results.map((r) => {
    const m = r.metrics;
    if (m === undefined) return [r.spec.name, 'failed', ...header.slice(2).map(() => '')];
    const cells = suite.columns.map((c) => {
      const v = m[c.field];
      return v === undefined ? '' : `${formatFigure(v, c.digits)}${c.suffix ?? ''}`;
    });
    if (baseline) {
      const v = m[baseline.field];
      const own = r.spec.baseline;
      const b = own === undefined ? base : figure(own);
      if (own !== undefined && own !== baseline.case) others.add(own);
      const mark = own !== undefined && own !== baseline.case ? ` (${own})` : '';
      cells.push(b && v !== undefined ? `${formatFigure(v / b, 2)}x${mark}` : 'n/a');
    }
    return [r.spec.name, ...cells];
  });
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: readonly string[]) =>
    cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  const out = [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)];
  if (baseline && base === undefined) {
    out.push(`(${baseline.label}: n/a, the ${baseline.case} case was not run)`);
  }
  for (const other of others) {
    out.push(`(a ratio marked (${other}) is against the ${other} case, not ${baseline?.case})`);
  }
  return out.join('\n');
}

function environment(): string {
  const cpus = os.cpus();
  return `node ${process.version} (V8 ${process.versions.v8}), ${process.platform} ${process.arch}, ${cpus[0]?.model.trim() ?? 'unknown CPU'} x ${cpus.length}`;
}

/** Each metric's median over the rounds of one case. */
function combine(rounds: readonly Metrics[]): Metrics {
  const fields = [...new Set(rounds.flatMap((m) => Object.keys(m)))];
  return Object.fromEntries(
    fields.map((f) => [f, median(rounds.flatMap((m) => (m[f] === undefined ? [] : [m[f]])))]),
  );
}

async function main(): Promise<void> {
  const { json, list, rounds, selections } = parseCli();
  if (list) {
    for (const { suite, cases } of selections) for (const c of cases) console.log(`${suite.name}\t${c.name}`);
    return;
  }
  const total = selections.reduce((n, s) => n + s.cases.length, 0) * rounds;
  if (!json) {
    console.log(environment());
    console.log(
      `each case in its own process (${process.execPath}), ${rounds} round(s), medians over rounds\n`,
    );
  }
  let done = 0;
  let failed = 0;
  for (const { suite, cases } of selections) {
    const measured = new Map<CaseSpec, Metrics[]>(cases.map((c) => [c, []]));
    const broken = new Set<CaseSpec>();
    for (let round = 1; round <= rounds; round++) {
      for (const spec of cases) {
        done++;
        if (broken.has(spec)) continue;
        console.error(
          `[${done}/${total}] ${suite.name}: ${spec.name}${rounds > 1 ? ` (round ${round})` : ''}`,
        );
        const report = await runChild(suite, spec);
        if (report.ok) {
          measured.get(spec)!.push(report.metrics);
        } else {
          failed++;
          broken.add(spec);
          console.error(`  failed: ${report.error}`);
        }
      }
    }
    const results: CaseResult[] = cases.map((spec) => ({
      spec,
      metrics: broken.has(spec) ? undefined : combine(measured.get(spec)!),
    }));
    const notes = suite.notes ?? [];
    if (json) {
      for (const result of results) if (result.metrics) console.log(jsonLine(suite, result));
      for (const note of notes) console.error(`note: ${note}`);
    } else {
      console.log(`${suite.name}: ${suite.description}\n`);
      console.log(table(suite, results));
      if (notes.length > 0) console.log(`\n${notes.map((n) => `note: ${n}`).join('\n')}`);
      console.log();
    }
  }
  if (failed > 0) {
    console.error(`${failed} case(s) failed`);
    process.exitCode = 1;
  }
}

await main();
