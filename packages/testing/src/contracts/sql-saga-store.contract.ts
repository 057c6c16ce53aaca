/**
 * Checks shared by the SQL saga stores beyond the port contract: bad input, corrupted rows, many concurrent
 * guarded writers, outbox rollback, table-name validation. An adapter's test calls
 * `describeSqlSagaStoreContract('postgres', setup)`; `setup` returns `undefined` to skip.
 * @module
 */
import { type AnyEvent, isCqrsError } from '@cqrs-ts/core';
import { type SagaCommit, type SagaStore, uuidv7 } from '@cqrs-ts/core/spi';
import { expect } from 'vitest';
import { describeHarness } from './harness.ts';
import { commitOf, createSaga, entry, T0 } from './saga-fixtures.ts';
import { SagaStepDone } from './saga-store.contract.ts';

/** What an SQL adapter provides (tables already migrated). */
export interface SqlSagaStoreHarness {
  /** A store over the harness's tables, refusing texts over 64 KiB (with these extra options). */
  store(options?: { onCorruptRow?: (error: Error) => void }): SagaStore;
  /** A store over the harness's tables whose outbox refuses payloads over 100 bytes. */
  storeWithTinyOutbox(): SagaStore;
  outboxRows(): Promise<number>;
  /** Creates a store with these table names (must throw a ConfigurationError for invalid ones). */
  storeWithTables(tables: { saga?: string; sagaLog?: string }): SagaStore;
  /** Runs the adapter's `migrate` with these saga table names. */
  migrateWith(tables: { saga?: string; sagaLog?: string }): Promise<void>;
  /** `concurrency` stores, each on a connection of its own where the adapter can (separate writers). */
  writers(concurrency: number): SagaStore[];
  /** Corrupts rows in ways the schema admits but a record cannot hold. */
  corruptNumbers(sagaId: string, logSagaId: string): Promise<void>;
  /** Drops the CHECK constraints (a table made by hand) and writes an unknown status and action. */
  corruptEnums(sagaId: string, logSagaId: string): Promise<void>;
  close(): Promise<void>;
}

const logRow = entry('reserve', 0, { result: '{}' });
const create = (s: SagaStore, id = uuidv7(), context: unknown = '{"orderId":"o-1"}') =>
  createSaga(s, { id, context: context as string });
const errorOf = (p: Promise<unknown>) =>
  p.then(
    () => undefined,
    (e: unknown) => e,
  );

/** Registers the SQL saga store checks for one adapter. */
export function describeSqlSagaStoreContract(
  name: string,
  setup: () => Promise<SqlSagaStoreHarness | undefined>,
): void {
  describeHarness(`${name} saga store (SQL checks)`, setup, (run) => {
    run('rejects malicious or invalid table names before touching the database', async (h) => {
      for (const bad of ['x; DROP TABLE users', 'a"b', 'a`b', 'Upper', '', 'a.b.c', `t${'x'.repeat(70)}`]) {
        expect(() => h.storeWithTables({ saga: bad })).toThrow(/invalid table name/);
        expect(() => h.storeWithTables({ sagaLog: bad })).toThrow(/invalid table name/);
        const e = await errorOf(h.migrateWith({ saga: bad }));
        expect(isCqrsError(e, 'CQRS_CONFIGURATION')).toBe(true);
      }
    });

    run('refuses unserializable, oversized and wrong input with typed errors, writing nothing', async (h) => {
      const store = h.store();
      const id = uuidv7();
      const bad = async (context: unknown, code: 'CQRS_VALIDATION' | 'CQRS_PAYLOAD_TOO_LARGE') => {
        const e = await errorOf(create(store, id, context));
        expect(isCqrsError(e, code)).toBe(true);
        expect(await store.load(id)).toBeUndefined();
      };
      await bad({ orderId: 'o-1' }, 'CQRS_VALIDATION');
      await bad(null, 'CQRS_VALIDATION');
      await bad('{"s":"\ud800"}', 'CQRS_VALIDATION'); // lone surrogate: not UTF-8 encodable
      await bad('{"s":"a\u0000b"}', 'CQRS_VALIDATION'); // NUL: not JSON.stringify output, Postgres refuses it
      await bad(JSON.stringify({ blob: 'x'.repeat(70 * 1024) }), 'CQRS_PAYLOAD_TOO_LARGE');
      await bad(JSON.stringify({ blob: 'é'.repeat(33 * 1024) }), 'CQRS_PAYLOAD_TOO_LARGE'); // 66 KiB as UTF-8
      const e = await errorOf(
        store.create({
          id: 'x'.repeat(300),
          name: '',
          definitionVersion: 1.5,
          context: '{}',
          owner: 'w1',
          now: Number.NaN,
          leaseMs: 10,
          deadlineAt: null,
        }),
      );
      expect(isCqrsError(e, 'CQRS_VALIDATION')).toBe(true);
      expect((e as { issues: { path: string[] }[] }).issues.map((i) => i.path.join('.'))).toEqual([
        'id',
        'now',
        'name',
        'definitionVersion',
      ]);

      await create(store, id);
      for (const [over, code] of [
        [{ context: 'x'.repeat(65 * 1024) }, 'CQRS_PAYLOAD_TOO_LARGE'],
        [{ context: { a: 1 } }, 'CQRS_VALIDATION'],
        [{ status: 'done' }, 'CQRS_VALIDATION'],
        [{ cursor: '1' }, 'CQRS_VALIDATION'],
        [{ log: [{ ...logRow, action: 'undo' }] }, 'CQRS_VALIDATION'],
        [{ log: [{ ...logRow, stepId: 's'.repeat(256) }] }, 'CQRS_VALIDATION'],
        [{ log: [{ ...logRow, result: 'r'.repeat(65 * 1024) }] }, 'CQRS_PAYLOAD_TOO_LARGE'],
        [{ lease: { retryAt: '1' } }, 'CQRS_VALIDATION'],
        [{ lease: { retryAt: 1.5 } }, 'CQRS_VALIDATION'],
        [{ lease: {} }, 'CQRS_VALIDATION'],
        [{ lease: 'forever' }, 'CQRS_VALIDATION'],
      ] as const) {
        const err = await errorOf(store.commit(commitOf(id, over as unknown as Partial<SagaCommit>)));
        expect(isCqrsError(err, code)).toBe(true);
      }
      expect(await store.load(id)).toMatchObject({ version: 1, context: '{"orderId":"o-1"}', cursor: 0 });
      expect(await store.history(id)).toEqual([]);
      for (const expectedVersion of [1.5, '1', Number.NaN]) {
        const err = await errorOf(
          store.acquire({
            id,
            owner: 'w1',
            now: T0,
            leaseMs: 10,
            expectedVersion: expectedVersion as number,
          }),
        );
        expect(isCqrsError(err, 'CQRS_VALIDATION')).toBe(true);
      }
      expect(await store.load(id)).toMatchObject({ version: 1, attempts: 1 });
      const q = await errorOf(store.findRecoverable({ now: T0, limit: 0 }));
      expect(isCqrsError(q, 'CQRS_VALIDATION')).toBe(true);
    });

    run(
      'a corrupted saga row or log row is a typed error on read; the other sagas keep working',
      async (h) => {
        const store = h.store();
        const good = await create(store);
        const badRow = await create(store);
        const badLog = await create(store);
        for (const id of [good, badRow, badLog]) await store.commit(commitOf(id, { lease: 'release' }));
        await h.corruptNumbers(badRow, badLog);
        // Reads of many rows leave a corrupted one out and report it; the others are returned.
        const reported: Error[] = [];
        const watched = h.store({ onCorruptRow: (e) => reported.push(e) });
        const found = (await watched.findRecoverable({ now: T0 + 100, limit: 10 })).map((r) => r.id);
        expect(found.sort()).toEqual([good, badLog].sort());
        const listed = (await watched.list({ limit: 100 })).map((r) => r.id);
        expect([good, badLog, badRow].filter((id) => listed.includes(id)).sort()).toEqual(
          [good, badLog].sort(),
        );
        expect(reported).toHaveLength(2);
        expect(
          reported.every((e) => isCqrsError(e, 'CQRS_SERIALIZATION') && e.message.includes(badRow)),
        ).toBe(true);
        const e1 = await errorOf(store.load(badRow));
        expect(isCqrsError(e1, 'CQRS_SERIALIZATION')).toBe(true);
        expect((e1 as Error).message).toContain(badRow);
        expect((e1 as Error).message).toContain('column version');
        const e2 = await errorOf(store.history(badLog));
        expect(isCqrsError(e2, 'CQRS_SERIALIZATION')).toBe(true);
        expect((e2 as Error).message).toContain('column started_at');
        expect(await store.load(good)).toMatchObject({ id: good, version: 2 });
        expect(await store.load(badLog)).toMatchObject({ id: badLog, version: 2 });
        expect(await store.history(good)).toHaveLength(1);

        await h.corruptEnums(badRow, badLog);
        expect(String(await errorOf(store.load(badRow)))).toMatch(/column status holds "zombie"/);
        expect(String(await errorOf(store.history(badLog)))).toMatch(/column action holds "undo"/);
        const recoverable = (await store.findRecoverable({ now: T0 + 100, limit: 10 })).map((r) => r.id);
        expect(recoverable.sort()).toEqual([good, badLog].sort());
        const got = await store.acquire({ id: good, owner: 'w2', now: T0 + 100, leaseMs: 1000 });
        expect(got).toMatchObject({ leaseOwner: 'w2', version: 3 });
        await store.commit(commitOf(good, { owner: 'w2', expectedVersion: 3, cursor: 2, log: [] }));
        expect(await store.load(good)).toMatchObject({ version: 4, cursor: 2 });
      },
    );

    run('of many concurrent commits at the same version exactly one wins, every round', async (h) => {
      const store = h.store();
      const writers = h.writers(6);
      for (let round = 0; round < 8; round++) {
        const id = await create(store);
        const results = await Promise.allSettled(
          writers.map((s, i) =>
            s.commit(commitOf(id, { context: `{"by":${i}}`, log: [{ ...logRow, stepId: `s${i}` }] })),
          ),
        );
        const won = results.flatMap((r, i) => (r.status === 'fulfilled' ? [i] : []));
        expect(won).toHaveLength(1);
        for (const r of results) {
          if (r.status === 'rejected') expect(isCqrsError(r.reason, 'CQRS_CONCURRENCY')).toBe(true);
        }
        expect((await store.history(id)).map((e) => e.stepId)).toEqual([`s${won[0]}`]);
        expect((await store.load(id))?.context).toBe(`{"by":${won[0]}}`);
      }
    });

    run('of concurrent acquires of one expired saga exactly one gets it, every round', async (h) => {
      const store = h.store();
      const writers = h.writers(6);
      for (let round = 0; round < 8; round++) {
        const id = await create(store);
        const got = await Promise.all(
          writers.map((s, i) => s.acquire({ id, owner: `r${i}`, now: T0 + 60_000, leaseMs: 10_000 })),
        );
        const winners = got.filter((r) => r !== undefined);
        expect(winners).toHaveLength(1);
        expect(await store.load(id)).toMatchObject({ leaseOwner: winners[0]!.leaseOwner, version: 2 });
      }
    });

    run('rolls a commit back when staging its events fails: no update, no log row, no event', async (h) => {
      const s = h.storeWithTinyOutbox();
      const before = await h.outboxRows();
      const id = await create(s);
      const big = SagaStepDone.create({ sagaId: 'x'.repeat(500), n: 1 }) as AnyEvent;
      const e = await errorOf(s.commit(commitOf(id, { events: [big] })));
      expect(isCqrsError(e, 'CQRS_PAYLOAD_TOO_LARGE')).toBe(true);
      expect(await s.load(id)).toMatchObject({ version: 1, cursor: 0 });
      expect(await s.history(id)).toEqual([]);
      expect(await h.outboxRows()).toBe(before);
      await s.commit(commitOf(id, { events: [SagaStepDone.create({ sagaId: id, n: 1 }) as AnyEvent] }));
      expect(await s.load(id)).toMatchObject({ version: 2, cursor: 1 });
      expect(await h.outboxRows()).toBe(before + 1);
    });
  });
}
