import { afterAll, beforeAll, describe, it } from 'vitest';

/** What every harness has: `reset` runs before each test (when given), `close` after the suite. */
export interface HarnessLifecycle {
  reset?(): Promise<void>;
  close(): Promise<void>;
}

/** Registers one test of a suite; `when` skips it for harnesses that lack what it needs. */
export type HarnessTest<THarness> = (
  title: string,
  fn: (harness: THarness) => Promise<void>,
  options?: { readonly when?: (harness: THarness) => boolean; readonly timeout?: number },
) => void;

/**
 * Registers `describe(title)` around the tests `body` declares: `setup` runs once before them (its `undefined`
 * skips every test, e.g. when a service is unreachable), `reset` before each, `close` after the last.
 */
export function describeHarness<THarness extends HarnessLifecycle>(
  title: string,
  setup: () => Promise<THarness | undefined>,
  body: (test: HarnessTest<THarness>) => void,
): void {
  describe(title, () => {
    let harness: THarness | undefined;
    beforeAll(async () => {
      harness = await setup();
    });
    afterAll(async () => {
      await harness?.close();
    });
    body((name, fn, options) =>
      it(
        name,
        async (ctx) => {
          const h = harness;
          if (h === undefined || (options?.when !== undefined && !options.when(h))) {
            ctx.skip();
            return;
          }
          await h.reset?.();
          await fn(h);
        },
        options?.timeout,
      ),
    );
  });
}

const rollbackSignal = new Error('rollback');

/**
 * A harness's `rollback` from its `tx`: runs `fn` in a transaction of `tx`, then rolls it back by throwing a
 * private signal out of it. Any other error still fails the test.
 */
export function rollbackVia<TTx>(
  tx: <T>(fn: (t: TTx) => Promise<T>) => Promise<T>,
): (fn: (t: TTx) => Promise<void>) => Promise<void> {
  return async (fn) => {
    await tx(async (t) => {
      await fn(t);
      throw rollbackSignal;
    }).catch((e: unknown) => {
      if (e !== rollbackSignal) throw e;
    });
  };
}
