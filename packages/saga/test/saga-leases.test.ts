import { createInMemorySagaStore } from '@cqrs-ts/core';
import { uuidv7 } from '@cqrs-ts/core/spi';
import { createSagaRunner, defineSaga, SagaLeaseError, sagaContext } from '@cqrs-ts/saga';
import { describe, expect, it } from 'vitest';
import { waitFor } from '../../core/test/support/services.ts';
import { Crash, crashingStore, deferred, withStore, work } from './support.ts';

const C = sagaContext<{ n: number }>();
const never = () => {};

/** A saga of `steps` steps, each taking `ms` (honouring its signal) and counting its completed runs. */
function slowSaga(name: string, steps: number, ms: number, runs: Map<string, number>) {
  return defineSaga({
    name,
    context: C,
    steps: Array.from({ length: steps }, (_, i) =>
      C.step({
        id: `s${i}`,
        act: async (_ctx, tools) => {
          await work(ms, tools.signal);
          const key = `${tools.sagaId}/s${i}`;
          runs.set(key, (runs.get(key) ?? 0) + 1);
          return i;
        },
      }),
    ),
  });
}

describe('saga leases', () => {
  it('a renewal never runs while the same run commits, so a refused renewal always means a lost lease', async () => {
    const inner = createInMemorySagaStore();
    let renewing = 0;
    let committing = 0;
    let overlaps = 0;
    let renewals = 0;
    const store = withStore(inner, {
      async renew(r) {
        renewals++;
        renewing++;
        if (committing > 0) overlaps++;
        await new Promise((resolve) => setTimeout(resolve, 60)); // a slow database
        try {
          return await inner.renew(r);
        } finally {
          renewing--;
        }
      },
      async commit(w) {
        committing++;
        if (renewing > 0) overlaps++;
        try {
          return await inner.commit(w);
        } finally {
          committing--;
        }
      },
    });
    const runs = new Map<string, number>();
    // Lease 300 ms: a renewal is due 100 ms into a 150 ms step and still in flight when the step ends.
    const runner = createSagaRunner({ store, leaseMs: 300, onError: never });
    const outcome = await runner.run(slowSaga('overlap', 6, 150, runs), { n: 1 });
    expect(outcome.status).toBe('completed');
    expect(renewals).toBeGreaterThan(0);
    expect(overlaps).toBe(0);
  });

  it('a step whose lease another worker took is aborted, and its worker commits nothing', async () => {
    const store = createInMemorySagaStore();
    const runs = new Map<string, number>();
    let aborted: unknown;
    const inside = deferred();
    const saga = defineSaga({
      name: 'taken',
      context: C,
      steps: [
        C.step({
          id: 'slow',
          act: async (_ctx, tools) => {
            inside.resolve();
            await work(2_000, tools.signal).catch((e: unknown) => {
              aborted = e;
              throw e;
            });
            runs.set('slow', (runs.get('slow') ?? 0) + 1);
          },
        }),
      ],
    });
    const a = createSagaRunner({ store, leaseMs: 300, owner: 'a', onError: never });
    const id = uuidv7();
    const first = a.run(saga, { n: 1 }, { id }).catch((e: unknown) => e);
    await inside.promise;
    // Worker b sees the lease expired (its clock is ahead) and takes the saga.
    const taken = await store.acquire({ id, owner: 'b', now: Date.now() + 301, leaseMs: 300 });
    expect(taken?.leaseOwner).toBe('b');
    const err = await first;
    expect(err).toBeInstanceOf(SagaLeaseError);
    expect(aborted).toBeInstanceOf(SagaLeaseError);
    expect((aborted as Error).message).toMatch(/lost the lease to another worker/);
    expect(runs.get('slow')).toBeUndefined();
    expect(await store.history(id)).toEqual([]);
    expect(await store.load(id)).toMatchObject({ leaseOwner: 'b', cursor: 0, status: 'running' });
  });

  it('a step whose lease cannot be renewed is aborted before the lease runs out, and nothing is committed', async () => {
    const inner = createInMemorySagaStore();
    const lease: unknown[] = [];
    const store = withStore(inner, {
      renew: async () => {
        throw new Error('database unreachable');
      },
    });
    // The runner's clock is moved by hand; its lease timer ticks in real time.
    const T = 1_000_000;
    let clock = T;
    let abortedAt: number | undefined;
    const inside = deferred();
    const saga = defineSaga({
      name: 'unrenewed',
      context: C,
      steps: [
        C.step({
          id: 'slow',
          act: async (_ctx, tools) => {
            inside.resolve();
            await work(10_000, tools.signal).catch((e: unknown) => {
              abortedAt = clock;
              throw e;
            });
          },
        }),
      ],
    });
    const runner = createSagaRunner({
      store,
      leaseMs: 600, // held until T + 600; renewed from T + 200; given up from T + 500
      now: () => clock,
      onError: (error, info) => lease.push([info.phase, (error as Error).message]),
    });
    const id = uuidv7();
    const running = runner.run(saga, { n: 1 }, { id }).catch((e: unknown) => e);
    await inside.promise;
    clock = T + 250;
    await waitFor(() => lease.length >= 2); // renewals fail, and are tried again at each tick
    clock = T + 499;
    const seen = lease.length;
    await waitFor(() => lease.length >= seen + 2);
    expect(abortedAt).toBeUndefined(); // a sixth of the lease is left: keep trying
    clock = T + 500;
    const err = await running;
    expect(err).toBeInstanceOf(SagaLeaseError);
    expect((err as Error).message).toMatch(/could not be renewed in time/);
    // Given up while the lease (until T + 600) still held, so no other worker could have started the step yet.
    expect(abortedAt).toBe(T + 500);
    expect(lease[0]).toEqual(['lease', 'database unreachable']);
    expect(await inner.history(id)).toEqual([]);
    expect(await inner.load(id)).toMatchObject({ status: 'running', leaseUntil: T + 600 });
  });

  it('a renewal that fails once is tried again at the next tick and the step keeps its lease', async () => {
    const inner = createInMemorySagaStore();
    let failures = 0;
    const store = withStore(inner, {
      async renew(r) {
        if (failures < 2) {
          failures++;
          throw new Error('connection reset');
        }
        return inner.renew(r);
      },
    });
    const runs = new Map<string, number>();
    const errors: unknown[] = [];
    const runner = createSagaRunner({ store, leaseMs: 1_200, onError: (e) => errors.push(e) });
    const outcome = await runner.run(slowSaga('flaky-renewal', 1, 1_800, runs), { n: 1 });
    expect(outcome.status).toBe('completed');
    expect(errors).toHaveLength(2);
  });

  it('a reader that paused past its lease does not run the next step once another worker took the saga', async () => {
    const store = createInMemorySagaStore();
    let clock = 1_000_000;
    const now = () => clock;
    const runs = new Map<string, number>();
    const saga = slowSaga('paused-reader', 3, 1, runs);
    const a = createSagaRunner({ store, leaseMs: 1_000, owner: 'a', now, onError: never });
    const b = createSagaRunner({ store, sagas: [saga], leaseMs: 1_000, owner: 'b', now, onError: never });
    const id = uuidv7();
    const reading = a.start(saga, { n: 1 }, { id })[Symbol.asyncIterator]();
    expect((await reading.next()).value).toMatchObject({ step: 's0' });
    clock += 1_001; // the reader dawdles; its lease runs out
    expect((await b.resume(id).done()).status).toBe('completed');
    const next = await reading.next().catch((e: unknown) => e);
    expect(next).toBeInstanceOf(SagaLeaseError);
    expect([...runs.values()]).toEqual([1, 1, 1]);
  });

  it('a reader that paused past a third of its lease renews it before the next step', async () => {
    const inner = createInMemorySagaStore();
    let renewals = 0;
    const store = withStore(inner, {
      renew: (r) => {
        renewals++;
        return inner.renew(r);
      },
    });
    let clock = 1_000_000;
    const runs = new Map<string, number>();
    const a = createSagaRunner({ store, leaseMs: 1_000, now: () => clock, onError: never });
    const reading = a.start(slowSaga('dawdle', 2, 1, runs), { n: 1 })[Symbol.asyncIterator]();
    await reading.next();
    clock += 400;
    await reading.next();
    expect(renewals).toBe(1);
    expect(runs.size).toBe(2);
  });

  it('a saga running in this worker is not run again by resume() or another recovery pass of the same worker', async () => {
    const store = createInMemorySagaStore();
    const gate = deferred();
    const inside = deferred();
    let runs = 0;
    const saga = defineSaga({
      name: 'reentrant',
      context: C,
      steps: [
        C.step({
          id: 'once',
          act: async () => {
            runs++;
            inside.resolve();
            await gate.promise;
          },
        }),
      ],
    });
    const runner = createSagaRunner({ store, sagas: [saga], onError: never });
    const id = uuidv7();
    const first = runner.run(saga, { n: 1 }, { id });
    await inside.promise;
    const again = await runner
      .resume(id)
      .done()
      .catch((e: unknown) => e);
    expect(again).toBeInstanceOf(SagaLeaseError);
    expect((again as Error).message).toMatch(/another run of this saga is active in this worker/);
    gate.resolve();
    expect((await first).status).toBe('completed');
    expect(runs).toBe(1);
    expect((await runner.health()).active).toBe(0);
  });

  it('a saga another worker finished after this worker listed it is neither run nor counted again', async () => {
    const store = createInMemorySagaStore();
    let clock = 1_000_000;
    const now = () => clock;
    const runs = new Map<string, number>();
    const saga = slowSaga('listed', 2, 1, runs);
    for (let i = 0; i < 10; i++) {
      const crashing = createSagaRunner({ store: crashingStore(store, { write: 1, when: 'after' }), now });
      const err = await crashing.run(saga, { n: i }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(Crash);
    }
    clock += 30_001;
    const a = createSagaRunner({ store, sagas: [saga], owner: 'a', now, onError: never });
    let reportA: Awaited<ReturnType<typeof a.recover>> | undefined;
    // b lists the sagas, then a recovers all of them before b gets to take any.
    const late = withStore(store, {
      async findRecoverable(q) {
        const found = await store.findRecoverable(q);
        reportA = await a.recover();
        return found;
      },
    });
    const b = createSagaRunner({ store: late, sagas: [saga], owner: 'b', now, onError: never });
    const reportB = await b.recover({ concurrency: 3 });
    expect(reportA).toMatchObject({ found: 10, completed: 10, skipped: 0 });
    expect(reportB).toMatchObject({ found: 10, completed: 0, skipped: 10 });
    expect(reportB.errors).toEqual([]);
    expect([...runs.values()].every((n) => n === 1)).toBe(true);
    expect(runs.size).toBe(20);
    // Nothing was written by b: each saga is at the version a left it.
    for (const r of await store.list({ limit: 100 }))
      expect(r).toMatchObject({ attempts: 2, leaseOwner: null });
  });
});
