/**
 * Contract of state-based aggregate repositories (`StateRepository` of `@cqrs-ts/core`): a row loaded with its
 * version and saved with an expected-version check, deletes, the `update` helper, rollbacks, two writers racing
 * on one row, typed errors for bad input.
 * @module
 */
import { ConcurrencyError, isCqrsError, type StateRepository } from '@cqrs-ts/core';
import { expect } from 'vitest';
import { describeHarness } from './harness.ts';

/** The state the contract stores: the harness's repository maps it to its table. */
export interface ContractAccount {
  readonly owner: string;
  readonly balance: number;
  readonly tags: readonly string[];
}

/** What a storage adapter provides to run {@link describeStateRepositoryContract}. */
export interface StateRepositoryHarness<TTx> {
  /** A repository of {@link ContractAccount} rows over the harness's table. */
  repository(): StateRepository<ContractAccount, TTx>;
  /** Runs `fn` in a transaction and commits. */
  tx<T>(fn: (tx: TTx) => Promise<T>): Promise<T>;
  /** Runs `fn` in a transaction, then rolls back. */
  rollback(fn: (tx: TTx) => Promise<void>): Promise<void>;
  /** Empties the table (between tests). */
  reset(): Promise<void>;
  close(): Promise<void>;
}

/**
 * The {@link ContractAccount} as columns of its own (`owner`, `balance`, `tags` as JSON), for a state repository
 * that maps the state to columns: `tags` is read back whether the driver parses JSON columns or returns text.
 */
export const CONTRACT_ACCOUNT_COLUMNS = Object.freeze({
  columns: Object.freeze(['owner', 'balance', 'tags'] as const),
  toRow: (s: ContractAccount): Record<string, unknown> => ({
    owner: s.owner,
    balance: s.balance,
    tags: JSON.stringify(s.tags),
  }),
  fromRow: (r: Record<string, unknown>): ContractAccount => ({
    owner: r.owner as string,
    balance: Number(r.balance),
    tags: typeof r.tags === 'string' ? (JSON.parse(r.tags) as string[]) : (r.tags as string[]),
  }),
});

const rejects = async (promise: Promise<unknown>): Promise<unknown> => {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error('expected a rejection');
};

const account = (balance: number, owner = 'ada'): ContractAccount => ({ owner, balance, tags: ['a', 'ü €'] });

/**
 * Registers the state repository contract for one adapter. `setup` runs once (its `undefined` skips the
 * suite), `reset` before each test, `close` after the last.
 */
export function describeStateRepositoryContract<TTx>(
  name: string,
  setup: () => Promise<StateRepositoryHarness<TTx> | undefined>,
): void {
  describeHarness(`${name} state repository contract`, setup, (test) => {
    test('saves a new row at version 1, loads it with its version and saves it again at the next', async (h) => {
      const repo = h.repository();
      expect(await h.tx((tx) => repo.load(tx, 'acc-1'))).toBeUndefined();
      expect(await h.tx((tx) => repo.save(tx, 'acc-1', account(10), { expectedVersion: 0 }))).toEqual({
        version: 1,
      });
      const loaded = await h.tx((tx) => repo.load(tx, 'acc-1'));
      expect(loaded).toEqual({ id: 'acc-1', state: account(10), version: 1 });
      expect(await h.tx((tx) => repo.save(tx, 'acc-1', account(25), { expectedVersion: 1 }))).toEqual({
        version: 2,
      });
      expect(await h.tx((tx) => repo.load(tx, 'acc-1'))).toEqual({
        id: 'acc-1',
        state: account(25),
        version: 2,
      });
      // ids are exact: another case is another row
      expect(await h.tx((tx) => repo.load(tx, 'ACC-1'))).toBeUndefined();
    });

    test('refuses a stale or wrong expectation with a ConcurrencyError carrying both versions', async (h) => {
      const repo = h.repository();
      await h.tx((tx) => repo.save(tx, 'acc', account(1), { expectedVersion: 'no-stream' }));
      await h.tx((tx) => repo.save(tx, 'acc', account(2), { expectedVersion: 1 }));
      const conflict = async (p: Promise<unknown>) => {
        const error = await rejects(p);
        expect(error).toBeInstanceOf(ConcurrencyError);
        return error as ConcurrencyError;
      };
      expect(
        await conflict(h.tx((tx) => repo.save(tx, 'acc', account(3), { expectedVersion: 1 }))),
      ).toMatchObject({
        code: 'CQRS_CONCURRENCY',
        expected: 1,
        actual: 2,
      });
      expect(
        await conflict(h.tx((tx) => repo.save(tx, 'acc', account(3), { expectedVersion: 0 }))),
      ).toMatchObject({
        expected: 0,
        actual: 2,
      });
      expect(
        await conflict(h.tx((tx) => repo.save(tx, 'none', account(3), { expectedVersion: 4 }))),
      ).toMatchObject({
        expected: 4,
        actual: undefined,
      });
      expect(
        await conflict(h.tx((tx) => repo.save(tx, 'none', account(3), { expectedVersion: 'stream-exists' }))),
      ).toMatchObject({
        actual: undefined,
      });
      expect(
        await h.tx((tx) => repo.save(tx, 'acc', account(4), { expectedVersion: 'stream-exists' })),
      ).toEqual({ version: 3 });
      expect(await h.tx((tx) => repo.save(tx, 'acc', account(5), { expectedVersion: 'any' }))).toEqual({
        version: 4,
      });
      expect(await h.tx((tx) => repo.save(tx, 'new', account(5), { expectedVersion: 'any' }))).toEqual({
        version: 1,
      });
      expect((await h.tx((tx) => repo.load(tx, 'acc')))?.state.balance).toBe(5);
    });

    test('deletes with an expected version', async (h) => {
      const repo = h.repository();
      await h.tx((tx) => repo.save(tx, 'acc', account(1), { expectedVersion: 0 }));
      expect(await rejects(h.tx((tx) => repo.delete(tx, 'acc', { expectedVersion: 2 })))).toMatchObject({
        code: 'CQRS_CONCURRENCY',
        actual: 1,
      });
      await h.tx((tx) => repo.delete(tx, 'acc', { expectedVersion: 1 }));
      expect(await h.tx((tx) => repo.load(tx, 'acc'))).toBeUndefined();
      expect(
        await rejects(h.tx((tx) => repo.delete(tx, 'acc', { expectedVersion: 'stream-exists' }))),
      ).toBeInstanceOf(ConcurrencyError);
      await h.tx((tx) => repo.delete(tx, 'acc', { expectedVersion: 'any' }));
      // once deleted it can be created again
      expect(await h.tx((tx) => repo.save(tx, 'acc', account(9), { expectedVersion: 0 }))).toEqual({
        version: 1,
      });
    });

    test('a rolled back save leaves the row as it was', async (h) => {
      const repo = h.repository();
      await h.tx((tx) => repo.save(tx, 'acc', account(1), { expectedVersion: 0 }));
      await h.rollback(async (tx) => {
        await repo.save(tx, 'acc', account(99), { expectedVersion: 1 });
        await repo.save(tx, 'other', account(99), { expectedVersion: 0 });
        // the transaction sees its own writes
        expect((await repo.load(tx, 'acc'))?.version).toBe(2);
      });
      expect(await h.tx((tx) => repo.load(tx, 'acc'))).toEqual({ id: 'acc', state: account(1), version: 1 });
      expect(await h.tx((tx) => repo.load(tx, 'other'))).toBeUndefined();
    });

    test('update loads, changes and saves expecting the loaded version', async (h) => {
      const repo = h.repository();
      const first = await h.tx((tx) =>
        repo.update(tx, 'acc', (s) => ({ ...(s ?? account(0)), balance: (s?.balance ?? 0) + 5 })),
      );
      expect(first).toEqual({ id: 'acc', state: account(5), version: 1 });
      const second = await h.tx((tx) => repo.update(tx, 'acc', (s) => ({ ...s!, balance: s!.balance + 5 })));
      expect(second.version).toBe(2);
      expect((await h.tx((tx) => repo.load(tx, 'acc')))?.state.balance).toBe(10);
    });

    test('two writers racing on one row: exactly one wins, the other gets a ConcurrencyError', async (h) => {
      const repo = h.repository();
      await h.tx((tx) => repo.save(tx, 'acc', account(0), { expectedVersion: 0 }));
      for (let round = 1; round <= 5; round++) {
        const loaded = (await h.tx((tx) => repo.load(tx, 'acc')))!;
        const results = await Promise.allSettled(
          [1, 2].map((w) =>
            h.tx(async (tx) => {
              await repo.save(tx, 'acc', account(round * 10 + w), { expectedVersion: loaded.version });
              return w;
            }),
          ),
        );
        const won = results.filter((r) => r.status === 'fulfilled') as PromiseFulfilledResult<number>[];
        const lost = results.filter((r) => r.status === 'rejected') as PromiseRejectedResult[];
        expect(won).toHaveLength(1);
        expect(lost).toHaveLength(1);
        expect(lost[0]!.reason).toBeInstanceOf(ConcurrencyError);
        expect(lost[0]!.reason).toMatchObject({ expected: loaded.version, actual: loaded.version + 1 });
        const now = await h.tx((tx) => repo.load(tx, 'acc'));
        expect(now).toEqual({
          id: 'acc',
          state: account(round * 10 + won[0]!.value),
          version: loaded.version + 1,
        });
      }
    });

    test('refuses malformed ids and expectations with a ValidationError', async (h) => {
      const repo = h.repository();
      const invalid = async (p: Promise<unknown>) => {
        const error = await rejects(p);
        expect(isCqrsError(error, 'CQRS_VALIDATION'), String(error)).toBe(true);
      };
      await h.tx(async (tx) => {
        for (const id of ['', 'x'.repeat(256), 'a\0b', '\udc00', 7, null]) {
          await invalid(repo.load(tx, id as never));
          await invalid(repo.save(tx, id as never, account(1), { expectedVersion: 0 }));
        }
        for (const expectedVersion of [-1, 0.5, 'never', null, undefined, Number.NaN])
          await invalid(repo.save(tx, 'acc', account(1), { expectedVersion } as never));
        await invalid(repo.save(tx, 'acc', account(1), undefined as never));
        await invalid(repo.delete(tx, 'acc', { expectedVersion: -2 } as never));
      });
      expect(await h.tx((tx) => repo.load(tx, 'acc'))).toBeUndefined();
    });
  });
}
