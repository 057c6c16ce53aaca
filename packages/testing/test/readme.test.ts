import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

/**
 * Every code block of the README that follows an `<!-- example: path[#region] -->` marker is the text of that
 * file (or of its `// #region name` … `// #endregion name` part), so the README shows code the tests compile
 * and run.
 */
const here = dirname(fileURLToPath(import.meta.url));
const pkg = resolve(here, '..');
const readme = readFileSync(join(pkg, 'README.md'), 'utf8');

function source(ref: string): string {
  const [path, region] = ref.split('#') as [string, string | undefined];
  const text = readFileSync(resolve(pkg, path), 'utf8');
  if (region === undefined) return text;
  const start = text.indexOf(`// #region ${region}\n`);
  const end = text.indexOf(`// #endregion ${region}\n`);
  if (start < 0 || end < start) throw new Error(`${path}: no region ${region}`);
  return text.slice(start + `// #region ${region}\n`.length, end);
}

const blocks = [...readme.matchAll(/<!-- example: (\S+) -->\s*```ts\n([\s\S]*?)```/g)];

describe('testing README', () => {
  it('has its examples', () => {
    expect(blocks.map((b) => b[1])).toEqual([
      'test/examples/decider-spec.test.ts',
      'test/examples/handler-spec.test.ts',
      'test/examples/saga-spec.test.ts',
      'test/examples/test-mediator.test.ts',
      'test/examples/outbox-store.contract.test.ts',
      'test/examples/inbox.contract.test.ts',
      'test/examples/saga-store.contract.test.ts',
      '../sqlite/test/sqlite-saga.test.ts#sql-saga-store-contract',
      'test/examples/broker.contract.test.ts',
    ]);
  });
  for (const [, ref, code] of blocks) {
    it(`shows ${ref} as it is`, () => {
      expect(code).toBe(source(ref!));
    });
  }
});
