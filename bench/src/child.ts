/**
 * Child process of one case: `node <flags> child.ts <suite> <case>`. Measures the case and sends a
 * {@link ChildReport} to the runner over IPC. Started by `run.ts`; not meant to be run by hand.
 */
import type { ChildReport } from './lib/types.ts';
import { suites } from './suites/index.ts';

function report(message: ChildReport, code: number): void {
  if (process.send === undefined) {
    console.error(JSON.stringify(message));
    process.exit(code);
  }
  // Exit once the message is flushed: some libraries leave handles open.
  process.send(message, () => process.exit(code));
}

const [suiteName, caseName] = process.argv.slice(2);
try {
  const suite = suites.find((s) => s.name === suiteName);
  const spec = suite?.cases.find((c) => c.name === caseName);
  if (suite === undefined || spec === undefined) throw new Error(`no case ${suiteName} / ${caseName}`);
  report({ ok: true, metrics: await suite.run(spec) }, 0);
} catch (error) {
  report({ ok: false, error: error instanceof Error ? (error.stack ?? error.message) : String(error) }, 1);
}
