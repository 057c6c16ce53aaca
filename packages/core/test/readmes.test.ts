import { existsSync, globSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import config from '../../../vitest.config.ts';
import { exampleText, type ReadmeBlock, readmeBlocks, readmes, repo } from './support/readme.ts';

const blocks = readmes().flatMap(readmeBlocks);
const where = (b: ReadmeBlock) => `${b.readme}:${b.line}`;

const tsconfig = JSON.parse(readFileSync(join(repo, 'tsconfig.json'), 'utf8')) as { include: string[] };
const typeChecked = new Set(
  globSync(
    tsconfig.include.map((p) => (p.endsWith('.ts') ? p : `${p}/**/*.ts`)),
    { cwd: repo },
  ),
);
const testFiles = globSync(config.test!.include!, { cwd: repo, exclude: (f) => f.includes('node_modules') });
/** Files a test runs: the test files themselves, and every `.ts` path a test names (imports, runExample). */
const run = new Set(testFiles);
for (const test of testFiles) {
  const pkg = test.split('/').slice(0, 2).join('/');
  for (const [, path] of readFileSync(join(repo, test), 'utf8').matchAll(/['"`]([\w./-]+\.ts)['"`]/g)) {
    run.add(relative(repo, resolve(repo, dirname(test), path!)));
    run.add(relative(repo, resolve(repo, pkg, path!)));
  }
}

describe('README code blocks', () => {
  it('are found in every README', () => {
    expect(blocks.filter((b) => b.marker?.kind === 'example').length).toBeGreaterThan(20);
  });

  it('each say what they are: an example file the tests run, or a fragment with its reason', () => {
    expect(
      blocks.filter((b) => b.marker === undefined).map(where),
      'put `<!-- example: <file>[#<region>] -->` or `<!-- fragment: <reason> -->` on the line before each block (test/support/readme.ts)',
    ).toEqual([]);
    expect(
      blocks.filter((b) => b.marker?.kind === 'fragment' && b.marker.reason.trim().length < 8).map(where),
    ).toEqual([]);
  });

  for (const b of blocks) {
    const m = b.marker;
    if (m?.kind !== 'example') continue;
    it(`${where(b)} is ${m.file}${m.region ? `#${m.region}` : ''}, type-checked and run by a test`, () => {
      expect(b.lang).toBe('ts');
      expect(existsSync(join(repo, m.file)), `${m.file} exists`).toBe(true);
      expect(b.code).toBe(exampleText(m.file, m.region));
      expect(typeChecked.has(m.file), `${m.file} is in tsconfig.json's include`).toBe(true);
      expect(run.has(m.file), `${m.file} is a test or named by one`).toBe(true);
    });
  }

  it("the root README's first commands are the demo script and what .ci/run runs", () => {
    const [first] = readmeBlocks('README.md');
    const commands = first!.code
      .split('\n')
      .filter((l) => l.trim() !== '')
      .map((l) => l.replace(/#.*$/, '').trim());
    expect(commands).toEqual(['npm ci && npm run demo', 'npm ci && npm test']);
    const scripts = (JSON.parse(readFileSync(join(repo, 'package.json'), 'utf8')) as { scripts: object })
      .scripts;
    expect(scripts).toHaveProperty('demo');
    // .ci/run installs and tests with the same commands (its npm ci only adds quieting flags)
    const ci = readFileSync(join(repo, '.ci/run'), 'utf8').split('\n');
    expect(ci.some((l) => /^npm ci( |$)/.test(l))).toBe(true);
    expect(ci).toContain('npm test');
  });
});
