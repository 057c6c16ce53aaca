import { execFile } from 'node:child_process';
import { createServer } from 'node:net';
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

export { waitFor } from '@cqrs-ts/testing';

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
