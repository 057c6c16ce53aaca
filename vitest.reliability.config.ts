import { defineConfig } from 'vitest/config';
import base from './vitest.config.ts';

/** Reliability tests (crashes, service restarts): one file at a time, after the main suite. */
export default defineConfig({
  ...base,
  test: {
    ...base.test,
    include: ['packages/*/test/**/*.reliability.test.ts', 'examples/*/test/**/*.reliability.test.ts'],
    exclude: ['**/node_modules/**'],
    fileParallelism: false,
    testTimeout: 240_000,
    passWithNoTests: true,
  },
});
