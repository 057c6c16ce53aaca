import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { exampleText, readmeBlocks } from './readme.ts';

/**
 * Service availability for integration tests: a test file calls `await service('postgres', probe)` and skips
 * (printing why) when the service is unreachable, unless CQRS_REQUIRE_SERVICES=1, which turns that into a failure.
 */
export async function service(name: string, probe: () => Promise<unknown>): Promise<boolean> {
  try {
    await probe();
    return true;
  } catch (error) {
    const reason = `${name} unreachable: ${error instanceof Error ? error.message : String(error)}`;
    if (process.env.CQRS_REQUIRE_SERVICES === '1') throw new Error(`${reason} (CQRS_REQUIRE_SERVICES=1)`);
    console.warn(`SKIP ${reason}`);
    return false;
  }
}

/** A table-name suffix unique to this process and run. */
export const uniqueSuffix = `${process.pid}_${Math.floor(Math.random() * 1e6)}`;

export const PG_URL = process.env.CQRS_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
export const MYSQL_URL = process.env.CQRS_MYSQL_URL ?? 'mysql://root@127.0.0.1:3306/test';

import { waitFor } from '@cqrs-ts/testing';

export { waitFor };

/** A server process of a test's own (never a shared service), to kill and start again for an outage. */
export interface PrivateServer {
  /** The loopback port it listens on. */
  readonly port: number;
  /** SIGKILLs it. */
  kill(): Promise<void>;
  /** Starts it again on the same port and data directory; resolves once `answers()` says so. */
  start(): Promise<void>;
  /** Kills it and removes its data directory. */
  dispose(): Promise<void>;
}

/**
 * Starts `command` with `args(port, dir)` on a free loopback port and a fresh temporary data directory, and
 * waits until `answers(port)` is true.
 */
export async function startPrivateServer(
  command: string,
  args: (port: number, dir: string) => string[],
  answers: (port: number) => Promise<boolean>,
): Promise<PrivateServer> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), `cqrs-${command}-`));
  let child: ChildProcess | undefined;
  const start = async () => {
    child = spawn(command, args(port, dir), { stdio: 'ignore' });
    await waitFor(() => answers(port), 30_000, `private ${command} on ${port}`);
  };
  const kill = async () => {
    const c = child;
    child = undefined;
    if (c === undefined || c.exitCode !== null || c.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => c.once('exit', () => resolve()));
    c.kill('SIGKILL');
    await exited;
  };
  await start();
  return {
    port,
    kill,
    start,
    async dispose() {
      await kill();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A loopback port free right now, for a private server a test starts (never the shared services' ports). */
export function freePort(): Promise<number> {
  return new Promise<number>((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      s.close(() => resolve(typeof a === 'object' && a !== null ? a.port : 0));
    });
  });
}

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '../../../..');

/**
 * @deprecated readmes.test.ts checks every README block against its `<!-- example: -->` file; a package's README
 * test only runs the example. Kept for tests written before: the block under that marker.
 */
export function readmeExample(readme: string, file: string): string {
  const block = readmeBlocks(readme).find(
    (b) =>
      b.marker?.kind === 'example' && b.marker.file === relative(repo, resolve(repo, dirname(readme), file)),
  );
  if (block === undefined) throw new Error(`${readme} has no <!-- example: ${file} -->`);
  return block.code;
}

/** @deprecated see {@link readmeExample}. The example file's text. */
export function exampleSource(packageDir: string, file: string): string {
  return exampleText(join(packageDir, file), undefined);
}

/** Runs an example file with Node (sources resolved through the `@cqrs-ts/source` condition); resolves to its stdout. */
export function runExample(
  packageDir: string,
  file: string,
  env: Record<string, string> = {},
): Promise<string> {
  return new Promise((resolvePromise, reject) => {
    execFile(
      process.execPath,
      ['--conditions=@cqrs-ts/source', join(repo, packageDir, file)],
      { cwd: join(repo, packageDir), env: { ...process.env, ...env }, timeout: 60_000 },
      (error, stdout, stderr) => {
        if (error) reject(new Error(`${file} failed: ${error.message}\n${stderr}`));
        else resolvePromise(stdout);
      },
    );
  });
}

/**
 * Runs `fn` with the URL of a PostgreSQL database of its own (created, then dropped with its connections), for
 * README examples that use fixed table names.
 */
export async function inOwnPostgresDatabase<T>(name: string, fn: (url: string) => Promise<T>): Promise<T> {
  const { default: pg } = await import('pg');
  const database = `readme_${name}_${uniqueSuffix}`;
  const admin = new pg.Client({ connectionString: PG_URL });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${database}`);
  try {
    const url = new URL(PG_URL);
    url.pathname = `/${database}`;
    return await fn(url.href);
  } finally {
    await admin.query(`DROP DATABASE ${database} WITH (FORCE)`);
    await admin.end();
  }
}

/** Whether PostgreSQL answers at {@link PG_URL} (see {@link service}), for tests outside the postgres package. */
export async function postgresReachable(): Promise<boolean> {
  const { default: pg } = await import('pg');
  return service('postgres', async () => {
    const c = new pg.Client({ connectionString: PG_URL, connectionTimeoutMillis: 2000 });
    await c.connect();
    await c.end();
  });
}

/** A listener that counts its calls, for callbacks such as a publisher's `onAvailable`. */
export interface CallRecorder {
  readonly listener: () => void;
  /** Calls so far. */
  readonly calls: number;
  /** Resolves at the next call after this one was made: the call itself is the event, no sleep. */
  nextCall(): Promise<void>;
}

export function callRecorder(): CallRecorder {
  let calls = 0;
  let waiters: Array<() => void> = [];
  return {
    listener() {
      calls++;
      const called = waiters;
      waiters = [];
      for (const resolve of called) resolve();
    },
    get calls() {
      return calls;
    },
    nextCall() {
      return new Promise<void>((resolve) => waiters.push(resolve));
    },
  };
}
