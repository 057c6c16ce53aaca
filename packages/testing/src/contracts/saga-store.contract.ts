/**
 * Contract of the saga storage port (`SagaStore` of `@cqrs-ts/core/spi`): create, guarded commits with log rows
 * and staged events, fencing leases, recovery and listing queries. An adapter's test file calls
 * `describeSagaStoreContract('postgres (pg)', setup)` where `setup` returns a {@link SagaStoreHarness} (or
 * `undefined` to skip when the database is unreachable).
 * @module
 */
import { type AnyEvent, defineEvent, isCqrsError } from '@cqrs-ts/core';
import { type SagaCommit, type SagaStore, uuidv7 } from '@cqrs-ts/core/spi';
import { expect } from 'vitest';
import { describeHarness } from './harness.ts';
import { commitOf, createSaga, entry, LEASE, T0 } from './saga-fixtures.ts';

/** What a storage adapter provides to run the saga store contract. */
export interface SagaStoreHarness {
  /** A store over the harness's tables (may be called several times; all see the same data). */
  store(): SagaStore;
  /** When the adapter supports `capabilities.outbox`: a store that stages events, and a count of staged rows. */
  outbox?: { store(): SagaStore; rows(): Promise<number> } | undefined;
  /** Deletes every row (between tests). */
  reset(): Promise<void>;
  close(): Promise<void>;
}

/** The event the contract stages with saga commits. */
export const SagaStepDone = defineEvent('sagas.step-done').withPayload<{ sagaId: string; n: number }>();

const create = (store: SagaStore, over: Parameters<typeof createSaga>[1] = {}) => createSaga(store, over);

const isConflict = (e: unknown) => isCqrsError(e, 'CQRS_CONCURRENCY');

/** Registers the saga store contract for one adapter. */
export function describeSagaStoreContract(
  name: string,
  setup: () => Promise<SagaStoreHarness | undefined>,
): void {
  describeHarness(`${name} saga store contract`, setup, (run) => {
    run('create stores a running saga holding the lease, at version 1', async (h) => {
      const s = h.store();
      const id = await create(s);
      const r = await s.load(id);
      expect(r).toEqual({
        id,
        name: 'orders',
        definitionVersion: 2,
        status: 'running',
        context: '{"orderId":"o-1"}',
        cursor: 0,
        version: 1,
        attempts: 1,
        error: null,
        leaseOwner: 'w1',
        leaseUntil: T0 + LEASE,
        deadlineAt: null,
        createdAt: T0,
        updatedAt: T0,
      });
      expect(await s.load(uuidv7())).toBeUndefined();
      expect(await s.history(id)).toEqual([]);
    });

    run('create refuses a duplicate id and keeps the existing row', async (h) => {
      const s = h.store();
      const id = await create(s);
      const err = await create(s, { id, name: 'other', owner: 'w2' }).catch((e: unknown) => e);
      expect(isConflict(err)).toBe(true);
      expect((await s.load(id))?.name).toBe('orders');
    });

    run('stores deadline, large and non-ASCII contexts byte for byte', async (h) => {
      const s = h.store();
      const id = uuidv7();
      const context = JSON.stringify({
        note: 'Zoë ✓ 日本 🚀',
        blob: 'x'.repeat(200_000),
        q: 'it\'s "quoted"',
      });
      await s.create({
        id,
        name: 'orders',
        definitionVersion: 1,
        context,
        owner: 'w1',
        now: T0,
        leaseMs: LEASE,
        deadlineAt: T0 + 5000,
      });
      const r = await s.load(id);
      expect(r?.context).toBe(context);
      expect(r?.deadlineAt).toBe(T0 + 5000);
    });

    run('commit updates the row, bumps the version and appends log rows in order', async (h) => {
      const s = h.store();
      const id = await create(s);
      const v2 = await s.commit(
        commitOf(id, {
          log: [entry('charge', 1, { status: 'failed', error: '{"message":"x"}' }), entry('charge-alt', 1)],
        }),
      );
      expect(v2).toBe(2);
      const v3 = await s.commit(
        commitOf(id, {
          expectedVersion: 2,
          now: T0 + 20,
          status: 'completed',
          cursor: 3,
          context: '{"done":true}',
          error: '{"message":"kept"}',
          log: [entry('ship', 2, { result: null, startedAt: T0 + 15, at: T0 + 19, attempts: 3 })],
          lease: 'release',
        }),
      );
      expect(v3).toBe(3);
      const r = await s.load(id);
      expect(r).toMatchObject({
        status: 'completed',
        cursor: 3,
        context: '{"done":true}',
        version: 3,
        attempts: 1,
        error: '{"message":"kept"}',
        leaseOwner: null,
        leaseUntil: null,
        createdAt: T0,
        updatedAt: T0 + 20,
      });
      const log = await s.history(id);
      expect(log.map((e) => e.stepId)).toEqual(['charge', 'charge-alt', 'ship']);
      expect(log[0]).toMatchObject({
        sagaId: id,
        slot: 1,
        action: 'act',
        status: 'failed',
        error: '{"message":"x"}',
      });
      expect(log[2]).toMatchObject({ result: null, startedAt: T0 + 15, at: T0 + 19, attempts: 3 });
      expect(log[0]!.seq).toBeLessThan(log[1]!.seq);
      expect(log[1]!.seq).toBeLessThan(log[2]!.seq);
    });

    run('commit with a number extends the lease from now', async (h) => {
      const s = h.store();
      const id = await create(s);
      await s.commit(commitOf(id, { now: T0 + 100, lease: 500 }));
      expect((await s.load(id))?.leaseUntil).toBe(T0 + 600);
    });

    run('commit refuses a stale version, another owner or a missing row and writes nothing', async (h) => {
      const s = h.store();
      const id = await create(s);
      for (const bad of [
        commitOf(id, { expectedVersion: 2 }),
        commitOf(id, { expectedVersion: 0 }),
        commitOf(id, { owner: 'w2' }),
        commitOf(uuidv7()),
      ]) {
        const err = await s.commit(bad).catch((e: unknown) => e);
        expect(isConflict(err)).toBe(true);
      }
      expect(await s.history(id)).toEqual([]);
      expect(await s.load(id)).toMatchObject({ version: 1, cursor: 0, status: 'running' });
    });

    run('commit after a released lease is refused', async (h) => {
      const s = h.store();
      const id = await create(s);
      await s.commit(commitOf(id, { lease: 'release', status: 'paused' }));
      const err = await s.commit(commitOf(id, { expectedVersion: 2 })).catch((e: unknown) => e);
      expect(isConflict(err)).toBe(true);
    });

    run('of two concurrent commits at the same version exactly one wins', async (h) => {
      const s = h.store();
      const s2 = h.store();
      const id = await create(s);
      const results = await Promise.allSettled([
        s.commit(commitOf(id, { log: [entry('a', 0)] })),
        s2.commit(commitOf(id, { log: [entry('b', 0)] })),
      ]);
      expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
      const rejected = results.find((r) => r.status === 'rejected') as PromiseRejectedResult;
      expect(isConflict(rejected.reason)).toBe(true);
      expect(await s.history(id)).toHaveLength(1);
    });

    run('acquire refuses a live lease of another owner and takes an expired one as a fence', async (h) => {
      const s = h.store();
      const id = await create(s);
      expect(await s.acquire({ id, owner: 'w2', now: T0 + LEASE, leaseMs: 1000 })).toBeUndefined();
      expect(await s.load(id)).toMatchObject({ version: 1, attempts: 1, leaseOwner: 'w1' });
      const r = await s.acquire({ id, owner: 'w2', now: T0 + LEASE + 1, leaseMs: 1000 });
      expect(r).toMatchObject({
        id,
        version: 2,
        attempts: 2,
        leaseOwner: 'w2',
        leaseUntil: T0 + LEASE + 1001,
        updatedAt: T0 + LEASE + 1,
        context: '{"orderId":"o-1"}',
        status: 'running',
      });
      // The previous owner is fenced off.
      const err = await s.commit(commitOf(id, { now: T0 + LEASE + 2 })).catch((e: unknown) => e);
      expect(isConflict(err)).toBe(true);
      expect(await s.acquire({ id: uuidv7(), owner: 'w2', now: T0, leaseMs: 1000 })).toBeUndefined();
    });

    run('acquire is re-entrant for the owner and ignores the status', async (h) => {
      const s = h.store();
      const id = await create(s);
      await s.commit(commitOf(id, { status: 'compensation_failed', lease: 'release' }));
      const a = await s.acquire({ id, owner: 'w1', now: T0 + 20, leaseMs: 1000 });
      expect(a).toMatchObject({ status: 'compensation_failed', version: 3 });
      const b = await s.acquire({ id, owner: 'w1', now: T0 + 30, leaseMs: 1000 });
      expect(b).toMatchObject({ version: 4, attempts: 3, leaseUntil: T0 + 1030 });
    });

    run('acquire with expectedVersion takes the saga only while its version is unchanged', async (h) => {
      const s = h.store();
      const id = await create(s);
      await s.commit(commitOf(id, { lease: 'release' })); // version 2, free
      // Listed at version 1, changed since: left alone, nothing written.
      expect(
        await s.acquire({ id, owner: 'w2', now: T0 + 20, leaseMs: 1000, expectedVersion: 1 }),
      ).toBeUndefined();
      expect(await s.load(id)).toMatchObject({
        version: 2,
        attempts: 1,
        leaseOwner: null,
        updatedAt: T0 + 10,
      });
      const got = await s.acquire({ id, owner: 'w2', now: T0 + 20, leaseMs: 1000, expectedVersion: 2 });
      expect(got).toMatchObject({ version: 3, attempts: 2, leaseOwner: 'w2', leaseUntil: T0 + 1020 });
      // The right version does not beat another owner's live lease.
      expect(
        await s.acquire({ id, owner: 'w3', now: T0 + 30, leaseMs: 1000, expectedVersion: 3 }),
      ).toBeUndefined();
      // Of two workers that listed the same version, one takes it.
      await s.commit(commitOf(id, { owner: 'w2', expectedVersion: 3, lease: 'release' }));
      const both = await Promise.all(
        ['w4', 'w5'].map((owner) =>
          h.store().acquire({ id, owner, now: T0 + 40, leaseMs: 1000, expectedVersion: 4 }),
        ),
      );
      expect(both.filter((r) => r !== undefined)).toHaveLength(1);
    });

    run(
      'commit with { retryAt } frees the lease and keeps the retry time, when recovery takes the saga again',
      async (h) => {
        const s = h.store();
        const id = await create(s);
        const v = await s.commit(
          commitOf(id, { status: 'compensation_failed', lease: { retryAt: T0 + 5000 } }),
        );
        expect(await s.load(id)).toMatchObject({
          status: 'compensation_failed',
          version: v,
          leaseOwner: null,
          leaseUntil: T0 + 5000,
        });
        const waiting = await create(s);
        await s.commit(commitOf(waiting, { status: 'compensation_failed', lease: 'release' })); // needs an operator
        const ids = async (now: number) => (await s.findRecoverable({ now, limit: 10 })).map((r) => r.id);
        expect(await ids(T0 + 5000)).toEqual([]);
        expect(await ids(T0 + 5001)).toEqual([id]);
        expect(await ids(T0 + 1_000_000)).toEqual([id]);
        // Free before its retry time: an operator's resume takes it at once.
        const taken = await s.acquire({ id, owner: 'w2', now: T0 + 20, leaseMs: 1000, expectedVersion: v });
        expect(taken).toMatchObject({ leaseOwner: 'w2', leaseUntil: T0 + 1020 });
        // Taken for a retry: not listed while the lease lives, listed again once it ran out (the worker died).
        expect(await ids(T0 + 1020)).toEqual([]);
        expect(await ids(T0 + 1021)).toEqual([id]);
        expect(
          isConflict(await s.commit(commitOf(id, { lease: { retryAt: T0 } })).catch((e: unknown) => e)),
        ).toBe(true);
      },
    );

    run('of concurrent acquires of one free saga exactly one wins', async (h) => {
      const s = h.store();
      const id = await create(s);
      await s.commit(commitOf(id, { lease: 'release' }));
      const stores = Array.from({ length: 6 }, () => h.store());
      const got = await Promise.all(
        stores.map((st, i) => st.acquire({ id, owner: `w${i + 10}`, now: T0 + 50, leaseMs: 10_000 })),
      );
      const winners = got.filter((r) => r !== undefined);
      expect(winners).toHaveLength(1);
      expect((await s.load(id))?.leaseOwner).toBe(winners[0]!.leaseOwner);
    });

    run('renew extends a held lease without bumping the version; release frees it', async (h) => {
      const s = h.store();
      const id = await create(s);
      expect(await s.renew({ id, owner: 'w1', expectedVersion: 1, now: T0 + 100, leaseMs: 5000 })).toBe(true);
      expect(await s.load(id)).toMatchObject({ version: 1, leaseUntil: T0 + 5100, updatedAt: T0 });
      expect(await s.renew({ id, owner: 'w2', expectedVersion: 1, now: T0, leaseMs: 5000 })).toBe(false);
      expect(await s.renew({ id, owner: 'w1', expectedVersion: 2, now: T0, leaseMs: 5000 })).toBe(false);
      expect(await s.release({ id, owner: 'w2', expectedVersion: 1 })).toBe(false);
      expect(await s.release({ id, owner: 'w1', expectedVersion: 2 })).toBe(false);
      expect(await s.release({ id, owner: 'w1', expectedVersion: 1 })).toBe(true);
      expect(await s.load(id)).toMatchObject({
        version: 1,
        leaseOwner: null,
        leaseUntil: null,
        updatedAt: T0,
      });
      expect(await s.acquire({ id, owner: 'w2', now: T0 + 1, leaseMs: 5000 })).toMatchObject({
        leaseOwner: 'w2',
      });
      expect(await s.renew({ id: uuidv7(), owner: 'w1', expectedVersion: 1, now: T0, leaseMs: 1 })).toBe(
        false,
      );
    });

    run('findRecoverable returns stale running/compensating sagas without a live lease', async (h) => {
      const s = h.store();
      const mk = async (name: string, status: SagaCommit['status'], now: number, release: boolean) => {
        const id = await create(s, { name, now });
        await s.commit(commitOf(id, { status, now, lease: release ? 'release' : LEASE }));
        return id;
      };
      const a = await mk('orders', 'running', T0 + 300, true);
      const b = await mk('orders', 'compensating', T0 + 100, true);
      const c = await mk('refunds', 'running', T0 + 200, true);
      const leased = await mk('orders', 'running', T0 + 50, false); // live until T0 + 50 + LEASE
      for (const st of ['paused', 'completed', 'compensated', 'compensation_failed', 'failed'] as const) {
        await mk('orders', st, T0, true);
      }
      const now = T0 + 1000;
      const ids = async (q: Partial<Parameters<SagaStore['findRecoverable']>[0]>) =>
        (await s.findRecoverable({ now, limit: 100, ...q })).map((r) => r.id);
      expect(await ids({})).toEqual([b, c, a]);
      expect(await ids({ limit: 2 })).toEqual([b, c]);
      expect(await ids({ names: ['orders'] })).toEqual([b, a]);
      expect(await ids({ names: [] })).toEqual([]);
      expect(await ids({ staleAfterMs: 750 })).toEqual([b, c]);
      expect(await ids({ staleAfterMs: 700 })).toEqual([b, c, a]);
      expect(await ids({ now: T0 + 50 + LEASE + 1 })).toEqual([leased, b, c, a]);
      // attempts: 1 after create; acquire makes it 2.
      await s.acquire({ id: b, owner: 'w9', now: T0 + 100, leaseMs: 1 });
      expect(await ids({ maxAttempts: 2 })).toEqual([c, a]);
      expect(await ids({ maxAttempts: 3 })).toEqual([b, c, a]);
      const [first] = await s.findRecoverable({ now, limit: 1 });
      expect(first).toMatchObject({ id: b, status: 'compensating', name: 'orders' });
    });

    run('list filters by status and name and pages by id', async (h) => {
      const s = h.store();
      const made: string[] = [];
      for (let i = 0; i < 5; i++) {
        const id = await create(s, { name: i % 2 ? 'refunds' : 'orders' });
        await s.commit(
          commitOf(id, { status: i < 3 ? 'compensation_failed' : 'completed', lease: 'release' }),
        );
        made.push(id);
      }
      const sorted = [...made].sort();
      const ids = async (q: Parameters<SagaStore['list']>[0]) => (await s.list(q)).map((r) => r.id);
      expect(await ids({ limit: 100 })).toEqual(sorted);
      expect(await ids({ limit: 100, statuses: ['compensation_failed'] })).toEqual(made.slice(0, 3).sort());
      expect(await ids({ limit: 100, statuses: [] })).toEqual([]);
      expect(await ids({ limit: 100, names: ['refunds'] })).toEqual([made[1], made[3]].sort());
      expect(await ids({ limit: 2 })).toEqual(sorted.slice(0, 2));
      expect(await ids({ limit: 2, afterId: sorted[1]! })).toEqual(sorted.slice(2, 4));
      expect(
        await ids({
          limit: 100,
          statuses: ['compensation_failed', 'completed'],
          names: ['orders', 'refunds'],
        }),
      ).toEqual(sorted);
    });

    run('count counts sagas by status and name, when the store has it', async (h) => {
      const s = h.store();
      if (s.count === undefined) return;
      const zero = {
        running: 0,
        paused: 0,
        compensating: 0,
        completed: 0,
        compensated: 0,
        compensation_failed: 0,
        failed: 0,
      };
      expect(await s.count()).toEqual(zero);
      for (let i = 0; i < 5; i++) {
        const id = await create(s, { name: i % 2 ? 'refunds' : 'orders' });
        if (i < 4)
          await s.commit(
            commitOf(id, { status: i < 3 ? 'compensation_failed' : 'completed', lease: 'release' }),
          );
      }
      expect(await s.count()).toEqual({ ...zero, running: 1, compensation_failed: 3, completed: 1 });
      expect(await s.count({ names: ['refunds'] })).toEqual({
        ...zero,
        compensation_failed: 1,
        completed: 1,
      });
      expect(await s.count({ names: ['orders', 'refunds'] })).toEqual(await s.count());
      expect(await s.count({ names: [] })).toEqual(zero);
    });

    run('history keeps each saga separate and ordered by seq across commits', async (h) => {
      const s = h.store();
      const x = await create(s);
      const y = await create(s);
      let vx = 1;
      let vy = 1;
      for (let i = 0; i < 4; i++) {
        vx = await s.commit(commitOf(x, { expectedVersion: vx, log: [entry(`x${i}`, i)] }));
        vy = await s.commit(
          commitOf(y, { expectedVersion: vy, log: [entry(`y${i}`, i), entry(`y${i}b`, i)] }),
        );
      }
      expect((await s.history(x)).map((e) => e.stepId)).toEqual(['x0', 'x1', 'x2', 'x3']);
      const hy = await s.history(y);
      expect(hy).toHaveLength(8);
      expect(hy.every((e, i) => i === 0 || e.seq > hy[i - 1]!.seq)).toBe(true);
      expect(hy.every((e) => e.sagaId === y)).toBe(true);
    });

    run(
      'commit stages step events in the outbox atomically when supported, and refuses them otherwise',
      async (h) => {
        const s = h.store();
        const id = await create(s);
        const evs = [
          SagaStepDone.create({ sagaId: id, n: 1 }),
          SagaStepDone.create({ sagaId: id, n: 2 }),
        ] as AnyEvent[];
        if (!s.capabilities.outbox) {
          const err = await s.commit(commitOf(id, { events: evs })).catch((e: unknown) => e);
          expect(isCqrsError(err, 'CQRS_CONFIGURATION')).toBe(true);
          expect(await s.history(id)).toEqual([]);
        }
        if (!h.outbox) return;
        const o = h.outbox.store();
        expect(o.capabilities.outbox).toBe(true);
        const before = await h.outbox.rows();
        const oid = await create(o);
        await o.commit(commitOf(oid, { events: evs }));
        expect(await h.outbox.rows()).toBe(before + 2);
        // A conflicting commit stages nothing.
        const err = await o.commit(commitOf(oid, { events: evs })).catch((e: unknown) => e);
        expect(isConflict(err)).toBe(true);
        expect(await h.outbox.rows()).toBe(before + 2);
        expect(await o.history(oid)).toHaveLength(1);
      },
    );
  });
}
