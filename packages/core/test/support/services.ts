import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

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

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '../../../..');

/**
 * The code block a README shows under `<!-- example: <path> -->`: README examples are files the type-check
 * compiles and a test runs, and the README shows them verbatim.
 */
export function readmeExample(readme: string, file: string): string {
  const text = readFileSync(join(repo, readme), 'utf8');
  const marker = `<!-- example: ${file} -->`;
  const at = text.indexOf(marker);
  if (at === -1) throw new Error(`${readme} has no ${marker}`);
  const block = /```ts\n([\s\S]*?)```/.exec(text.slice(at + marker.length));
  if (block === null) throw new Error(`${readme}: no ts block after ${marker}`);
  return block[1]!;
}

/** The example file's text, as the README must show it. */
export function exampleSource(packageDir: string, file: string): string {
  return readFileSync(join(repo, packageDir, file), 'utf8');
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
