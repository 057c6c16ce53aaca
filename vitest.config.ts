import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { defineConfig, type Plugin } from 'vitest/config';

const root = fileURLToPath(new URL('./', import.meta.url));
const packages = `${root}packages/`;

/**
 * Vite's transformer does not lower TC39 standard decorators yet, and Node cannot run them. Files named
 * `*.decorated.ts` are compiled by the TypeScript compiler itself, so tests exercise real standard decorators.
 */
function standardDecorators(): Plugin {
  return {
    name: 'cqrs-ts:standard-decorators',
    enforce: 'pre',
    transform(code, id) {
      if (!id.endsWith('.decorated.ts')) return undefined;
      const dir = mkdtempSync(join(tmpdir(), 'cqrs-dec-'));
      try {
        const file = join(dir, basename(id));
        writeFileSync(file, code);
        execFileSync(
          process.execPath,
          [
            join(root, 'node_modules/typescript/bin/tsc'),
            '--target',
            'es2023',
            '--module',
            'esnext',
            '--moduleResolution',
            'bundler',
            '--noCheck',
            '--outDir',
            join(dir, 'out'),
            file,
          ],
          { stdio: 'pipe', cwd: dir },
        );
        return {
          code: readFileSync(join(dir, 'out', basename(id).replace(/\.ts$/, '.js')), 'utf8'),
          map: null,
        };
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  };
}

export default defineConfig({
  plugins: [standardDecorators()],
  resolve: {
    alias: [
      { find: /^@cqrs-ts\/([a-z0-9-]+)$/, replacement: `${packages}$1/src/index.ts` },
      { find: /^@cqrs-ts\/([a-z0-9-]+)\/(.+)$/, replacement: `${packages}$1/src/$2.ts` },
    ],
  },
  test: {
    include: [
      'packages/*/src/**/*.test.ts',
      'packages/*/test/**/*.test.ts',
      'examples/*/src/**/*.test.ts',
      'examples/*/test/**/*.test.ts',
      'bench/test/**/*.test.ts',
    ],
    // Reliability tests restart services and kill processes: they run alone, after the rest (vitest.reliability.config.ts).
    exclude: ['**/node_modules/**', '**/*.reliability.test.ts'],
    testTimeout: 20_000,
    hookTimeout: 60_000,
    pool: 'forks',
  },
});
