import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

/**
 * The shape of core: entries with explicit named exports, folders that import one way, no import cycles, no
 * deep imports into core from other packages, and a README that lists the main entry's names.
 */

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const coreSrc = join(repo, 'packages/core/src');
const ENTRIES = { '.': 'index.ts', './spi': 'spi.ts', './sql': 'sql.ts' } as const;

/**
 * Core's folders, lowest first: a file may import from its own folder or a lower one, never a higher one.
 * Entry files (index.ts, spi.ts, sql.ts) sit above all of them.
 */
const FOLDER_ORDER = [
  'internal',
  'errors',
  'shared',
  'context',
  'messages',
  'events',
  'mediator',
  'behaviors',
  'query-cache',
  'diagrams',
  'inbox',
  'broker',
  'outbox',
  'event-log',
  'saga',
  'unit-of-work',
  'aggregates',
  'projections',
  'health',
  'sql',
];

function walk(dir: string, out: string[] = []): string[] {
  for (const name of readdirSync(dir)) {
    if (name === 'node_modules' || name === 'dist') continue;
    const p = join(dir, name);
    if (statSync(p).isDirectory()) walk(p, out);
    else if (/\.(ts|mts)$/.test(name)) out.push(p);
  }
  return out;
}

interface ImportRef {
  readonly specifier: string;
  readonly typeOnly: boolean;
}

function importsOf(source: string): ImportRef[] {
  const out: ImportRef[] = [];
  const re = /^(?:import|export)\s+(type\s+)?(?:[^'";]*?\s+from\s+)?'([^']+)';/gm;
  for (const m of source.matchAll(re)) out.push({ specifier: m[2]!, typeOnly: m[1] !== undefined });
  return out;
}

/** Names exported by an entry file, which may only hold `export { ... } from './...'` statements. */
function entryNames(file: string): { name: string; from: string }[] {
  const source = readFileSync(file, 'utf8');
  const out: { name: string; from: string }[] = [];
  for (const m of source.matchAll(/export\s+(?:type\s+)?\{([^}]*)\}\s+from\s+'([^']+)';/g)) {
    for (const raw of m[1]!.split(',')) {
      const name = raw.trim().replace(/^type\s+/, '');
      if (name.length > 0) out.push({ name: name.split(/\s+as\s+/).at(-1)!, from: m[2]! });
    }
  }
  return out;
}

function stripComments(source: string): string {
  return source.replace(/\/\*[\s\S]*?\*\//g, '').replace(/^\s*\/\/.*$/gm, '');
}

describe('core entries', () => {
  it('hold only explicit named re-exports, no export * and no local code', () => {
    for (const entry of Object.values(ENTRIES)) {
      const code = stripComments(readFileSync(join(coreSrc, entry), 'utf8'));
      const statements = code
        .split(';')
        .map((s) => s.trim())
        .filter((s) => s.length > 0);
      for (const s of statements)
        expect(s, `${entry}: ${s.slice(0, 80)}`).toMatch(/^export (type )?\{[^}]*\} from '\.\/[^']+'$/s);
    }
  });

  it('give each name one home', () => {
    const seen = new Map<string, string>();
    for (const entry of Object.values(ENTRIES)) {
      for (const { name } of entryNames(join(coreSrc, entry))) {
        expect(seen.get(name), `${name} is exported by ${seen.get(name)} and ${entry}`).toBeUndefined();
        seen.set(name, entry);
      }
    }
  });

  it('export nothing tagged @internal', () => {
    for (const entry of Object.values(ENTRIES)) {
      for (const { name, from } of entryNames(join(coreSrc, entry))) {
        const source = readFileSync(join(coreSrc, from), 'utf8');
        const decl = new RegExp(
          `(/\\*\\*(?:(?!\\*/)[\\s\\S])*\\*/\\s*)?export (?:declare )?(?:abstract )?(?:async )?(?:function\\*?|const|let|class|interface|type) ${name}\\b`,
        ).exec(source);
        expect(decl, `${name} is not declared in ${from}`).not.toBeNull();
        expect(decl?.[1] ?? '', `${entry} exports ${name}, tagged @internal`).not.toContain('@internal');
      }
    }
  });

  it('are mapped in package.json with the source condition first, and build to dist', () => {
    const pkg = JSON.parse(readFileSync(join(repo, 'packages/core/package.json'), 'utf8')) as {
      exports: Record<string, Record<string, string> | string>;
    };
    expect(Object.keys(pkg.exports).sort()).toEqual([...Object.keys(ENTRIES), './package.json'].sort());
    for (const [subpath, file] of Object.entries(ENTRIES)) {
      const target = pkg.exports[subpath] as Record<string, string>;
      const base = file.replace(/\.ts$/, '');
      expect(Object.entries(target)).toEqual([
        ['@cqrs-ts/source', `./src/${file}`],
        ['types', `./dist/${base}.d.ts`],
        ['default', `./dist/${base}.js`],
      ]);
    }
  });

  it('resolve through the test alias to the same modules', async () => {
    const [main, spi, sql] = await Promise.all([
      import('@cqrs-ts/core'),
      import('@cqrs-ts/core/spi'),
      import('@cqrs-ts/core/sql'),
    ]);
    expect(typeof main.createMediator).toBe('function');
    expect(typeof spi.createOutboxEncoder).toBe('function');
    expect(typeof sql.outboxRecordFromRow).toBe('function');
  });
});

describe('core README', () => {
  it('lists exactly the names of the main entry', () => {
    const readme = readFileSync(join(repo, 'packages/core/README.md'), 'utf8');
    const start = readme.indexOf('<!-- main-entry-names:start -->');
    const end = readme.indexOf('<!-- main-entry-names:end -->');
    expect(start, 'README marker main-entry-names:start').toBeGreaterThan(-1);
    expect(end).toBeGreaterThan(start);
    const listed = [...readme.slice(start, end).matchAll(/`([A-Za-z_$][\w$]*)`/g)].map((m) => m[1]!);
    const exported = entryNames(join(coreSrc, 'index.ts')).map((e) => e.name);
    expect(new Set(listed).size, 'a name is listed twice').toBe(listed.length);
    expect([...listed].sort()).toEqual([...exported].sort());
    expect(readme).toContain(`The main entry exports these ${exported.length} names`);
  });
});

describe('core imports', () => {
  const files = walk(coreSrc);
  const graph = new Map<string, string[]>();
  const runtime = new Map<string, string[]>();
  for (const file of files) {
    const deps: string[] = [];
    const values: string[] = [];
    for (const { specifier, typeOnly } of importsOf(readFileSync(file, 'utf8'))) {
      if (!specifier.startsWith('.')) continue;
      deps.push(resolve(dirname(file), specifier));
      if (!typeOnly) values.push(resolve(dirname(file), specifier));
    }
    graph.set(file, deps);
    runtime.set(file, values);
  }

  // Type-only imports are erased by the compiler, so only value imports can make a load-order cycle.
  it('have no cycle between files through value imports', () => {
    const state = new Map<string, 'open' | 'done'>();
    const cycles: string[] = [];
    const visit = (file: string, path: string[]) => {
      if (state.get(file) === 'done') return;
      if (state.get(file) === 'open') {
        cycles.push([...path.slice(path.indexOf(file)), file].map((f) => relative(coreSrc, f)).join(' -> '));
        return;
      }
      state.set(file, 'open');
      for (const dep of runtime.get(file) ?? []) visit(dep, [...path, file]);
      state.set(file, 'done');
    };
    for (const file of files) visit(file, []);
    expect(cycles).toEqual([]);
  });

  it('point one way between folders', () => {
    const wrong: string[] = [];
    for (const [file, deps] of graph) {
      const from = relative(coreSrc, file).split('/');
      if (from.length === 1) continue; // entry files
      const rank = FOLDER_ORDER.indexOf(from[0]!);
      expect(rank, `folder ${from[0]} has no place in FOLDER_ORDER`).toBeGreaterThan(-1);
      for (const dep of deps) {
        const to = relative(coreSrc, dep).split('/')[0]!;
        if (FOLDER_ORDER.indexOf(to) > rank)
          wrong.push(`${relative(coreSrc, file)} -> ${relative(coreSrc, dep)}`);
      }
    }
    expect(wrong).toEqual([]);
  });
});

const SHARED_TEST_FILES = new Set([
  'packages/core/test/support/services.ts',
  'packages/core/test/support/outage-flow.ts',
]);

describe('other packages', () => {
  it('import core only through its public entries, and each other only by package name', () => {
    const roots = [
      ...readdirSync(join(repo, 'packages'))
        .filter((p) => p !== 'core')
        .map((p) => join(repo, 'packages', p)),
      join(repo, 'examples'),
      join(repo, 'bench/src'),
    ];
    const allowed = new Set(['@cqrs-ts/core', '@cqrs-ts/core/spi', '@cqrs-ts/core/sql']);
    const deep: string[] = [];
    for (const file of roots.flatMap((r) => walk(r))) {
      for (const { specifier } of importsOf(readFileSync(file, 'utf8'))) {
        const here = relative(repo, file);
        if (specifier.startsWith('@cqrs-ts/core') && !allowed.has(specifier))
          deep.push(`${here}: ${specifier}`);
        if (specifier.startsWith('.')) {
          const target = relative(repo, resolve(dirname(file), specifier));
          const [, from] = here.split('/');
          const [top, to] = target.split('/');
          // across packages only by package name; the shared files are the tests' service helper and the
          // long-outage scenario of the broker packages' reliability tests
          const crosses = top === 'packages' && here.startsWith('packages/') && to !== from;
          if (crosses && !SHARED_TEST_FILES.has(target)) deep.push(`${here}: ${specifier}`);
          if (target.startsWith('packages/core/src')) deep.push(`${here}: ${specifier}`);
        }
      }
    }
    expect(deep).toEqual([]);
  });
});

describe('broker packages', () => {
  const brokers = ['nats', 'rabbitmq', 'redis', 'kafka'];

  it('share a file set: options, publisher, consumer, broadcast consumer, errors and index', () => {
    for (const broker of brokers) {
      const files = readdirSync(join(repo, 'packages', broker, 'src'));
      for (const role of ['options', 'publisher', 'consumer', 'broadcast-consumer', 'errors']) {
        expect(files, broker).toContain(`${broker}-${role}.ts`);
      }
      expect(files, broker).toContain('index.ts');
      // package-specific helpers carry the package's name too
      expect(
        files.filter((f) => f !== 'index.ts' && !f.startsWith(`${broker}-`)),
        broker,
      ).toEqual([]);
    }
  });

  it('have README sections in the same order (a package helper may sit between Errors and Tests)', () => {
    for (const broker of brokers) {
      const readme = readFileSync(join(repo, 'packages', broker, 'README.md'), 'utf8');
      const headings = [...readme.matchAll(/^## (.+)$/gm)].map((m) => m[1]!);
      const common = ['Example', 'Wire format', 'Publisher', 'Consumer', 'Broadcast consumer', 'Errors'];
      expect(headings.slice(0, common.length), broker).toEqual(common);
      expect(headings.at(-1), broker).toBe('Tests');
      expect(headings.length - common.length - 1, broker).toBeLessThanOrEqual(1);
    }
  });
});

describe('HTTP framework packages', () => {
  const frameworks = ['fastify', 'hono', 'express'];

  it('share a file set: options, one mounting file, index, an example, a contract test and a README test', () => {
    for (const fw of frameworks) {
      const files = readdirSync(join(repo, 'packages', fw, 'src')).sort();
      expect(files, fw).toContain(`${fw}-options.ts`);
      expect(
        files.filter((f) => f !== 'index.ts' && !f.startsWith(`${fw}-`)),
        fw,
      ).toEqual([]);
      expect(files, fw).toHaveLength(3);
      expect(readdirSync(join(repo, 'packages', fw, 'examples')), fw).toEqual([`orders-${fw}.ts`]);
      expect(readdirSync(join(repo, 'packages', fw, 'test')).sort(), fw).toEqual([
        `${fw}-readme.test.ts`,
        `${fw}.contract.test.ts`,
      ]);
    }
  });

  it('have README sections in the same order', () => {
    for (const fw of frameworks) {
      const readme = readFileSync(join(repo, 'packages', fw, 'README.md'), 'utf8');
      const headings = [...readme.matchAll(/^## (.+)$/gm)].map((m) => m[1]!);
      expect(headings, fw).toEqual([
        'Example',
        'Mounting',
        'Request scope (DI)',
        'Bodies and limits',
        'Streams',
        'Tests',
      ]);
    }
  });
});
