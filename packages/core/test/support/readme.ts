import { globSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * README code blocks, one rule for all of them: the line before each fenced block is either
 *
 * - `<!-- example: <path>[#<region>] -->`: the block is that file (path relative to the README), or the lines
 *   between its `// #region <region>` and `// #endregion <region>` (dedented), verbatim; the type-check
 *   compiles the file and a test runs it (a `*.test.ts` file, or one a test names and runs with `runExample`
 *   or imports), or
 * - `<!-- fragment: <reason> -->`: the block is not code that runs on its own (a shell command, printed
 *   output, SQL, a signature), and the reason says so.
 */
export const repo = resolve(dirname(fileURLToPath(import.meta.url)), '../../../..');

/** A fenced block of a README with the marker before it. */
export interface ReadmeBlock {
  /** README path, relative to the repository. */
  readonly readme: string;
  /** 1-based line of the opening fence. */
  readonly line: number;
  readonly lang: string;
  readonly code: string;
  readonly marker:
    | { readonly kind: 'example'; readonly file: string; readonly region: string | undefined }
    | { readonly kind: 'fragment'; readonly reason: string }
    | undefined;
}

/** Every README of the repository: the root, each package, each example app, the bench. */
export function readmes(): string[] {
  return globSync(['README.md', 'packages/*/README.md', 'examples/*/README.md', 'bench/README.md'], {
    cwd: repo,
  }).sort();
}

/** The fenced blocks of a README (path relative to the repository), with their markers. */
export function readmeBlocks(readme: string): ReadmeBlock[] {
  const lines = readFileSync(join(repo, readme), 'utf8').split('\n');
  const blocks: ReadmeBlock[] = [];
  for (let i = 0; i < lines.length; i++) {
    const open = /^```(\S*)\s*$/.exec(lines[i]!);
    if (open === null) continue;
    let end = i + 1;
    while (end < lines.length && lines[end] !== '```') end++;
    let before = i - 1;
    while (before >= 0 && lines[before]!.trim() === '') before--;
    const prev = before >= 0 ? lines[before]!.trim() : '';
    const example = /^<!-- example: (\S+?)(?:#(\S+))? -->$/.exec(prev);
    const fragment = /^<!-- fragment: (.+?) -->$/.exec(prev);
    blocks.push({
      readme,
      line: i + 1,
      lang: open[1]!,
      code: lines.slice(i + 1, end).join('\n') + (end > i + 1 ? '\n' : ''),
      marker: example
        ? {
            kind: 'example',
            file: relative(repo, resolve(repo, dirname(readme), example[1]!)),
            region: example[2],
          }
        : fragment
          ? { kind: 'fragment', reason: fragment[1]! }
          : undefined,
    });
    i = end;
  }
  return blocks;
}

/** The text a README must show for an example: the whole file or the dedented lines of one region. */
export function exampleText(file: string, region: string | undefined): string {
  const text = readFileSync(join(repo, file), 'utf8');
  if (region === undefined) return text;
  const lines = text.split('\n');
  const start = lines.findIndex((l) => l.trim() === `// #region ${region}`);
  const end = lines.findIndex((l, i) => i > start && l.trim() === `// #endregion ${region}`);
  if (start < 0 || end < 0) throw new Error(`${file}: no region ${region}`);
  const indent = lines[start]!.length - lines[start]!.trimStart().length;
  return `${lines
    .slice(start + 1, end)
    .map((l) => l.slice(Math.min(indent, l.length - l.trimStart().length)))
    .join('\n')}\n`;
}
