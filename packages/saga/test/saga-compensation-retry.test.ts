import { ConfigurationError, createInMemorySagaStore, ValidationError } from '@cqrs-ts/core';
import { uuidv7 } from '@cqrs-ts/core/spi';
import {
  type CompensationPolicy,
  createSagaRunner,
  defineSaga,
  type SagaFailedError,
  SagaLeaseError,
  sagaContext,
} from '@cqrs-ts/saga';
import { describe, expect, it } from 'vitest';
import { waitFor } from '../../core/test/support/services.ts';
import { deferred, work } from './support.ts';

const C = sagaContext<{ n: number }>();
const never = () => {};

/** A downstream service that refuses calls while `down` says so, counting every call. */
function downstream(down: () => boolean, fail: () => Error = () => new Error('ECONNREFUSED')) {
  const calls = { refund: 0, refunded: 0 };
  const refund = async () => {
    calls.refund++;
    if (down()) throw fail();
    calls.refunded++;
  };
  return { calls, refund };
}

/** Charge, then ship, which always fails: the charge is refunded through `refund`. */
function chargeSaga(name: string, refund: () => Promise<void>) {
  return defineSaga({
    name,
    context: C,
    steps: [
      C.step({ id: 'charge', act: () => ({ paymentId: 'p-1' }), compensate: () => refund() }),
      C.step({
        id: 'ship',
        act: () => {
          throw new ValidationError('ship', [{ path: ['address'], message: 'missing', code: 'required' }]);
        },
      }),
    ],
  });
}

const quick = (over: CompensationPolicy = {}): CompensationPolicy => ({
  backoff: { initialMs: 10, maxMs: 20, jitter: 'none' },
  ...over,
});

describe('compensation retries', () => {
  it('a pass keeps retrying a compensation with backoff through a short outage', async () => {
    const backAt = Date.now() + 150;
    const service = downstream(() => Date.now() < backAt);
    const runner = createSagaRunner({
      store: createInMemorySagaStore(),
      compensation: quick({ retryForMs: 2_000 }),
      random: () => 0,
    });
    const err = (await runner
      .run(chargeSaga('short-outage', service.refund), { n: 1 })
      .catch((e) => e)) as SagaFailedError;
    expect(err.status).toBe('compensated');
    expect(service.calls.refunded).toBe(1);
    expect(service.calls.refund).toBeGreaterThan(3);
    const [, , undo] = await runner.history(err.sagaId!);
    expect(undo).toMatchObject({ action: 'compensate', status: 'completed', attempts: service.calls.refund });
  });

  it('after a pass runs out, recovery takes the saga again after its cool-down until the compensation succeeds', async () => {
    const store = createInMemorySagaStore();
    let down = true;
    const service = downstream(() => down);
    const saga = chargeSaga('long-outage', service.refund);
    const runner = createSagaRunner({
      store,
      sagas: [saga],
      compensation: quick({ retryForMs: 60, coolDownMs: 100, budgetMs: 60_000 }),
      onError: never,
    });
    const before = Date.now();
    const err = (await runner.run(saga, { n: 1 }).catch((e) => e)) as SagaFailedError;
    expect(err.status).toBe('compensation_failed');
    expect(err.retryAt).toBeGreaterThanOrEqual(before + 100);
    expect(await store.load(err.sagaId!)).toMatchObject({ leaseOwner: null, leaseUntil: err.retryAt });
    expect(await runner.health()).toEqual({ needsOperator: 0, retrying: 1, active: 0 });
    // Within the cool-down nothing is taken.
    if (Date.now() < err.retryAt! - 20) expect((await runner.recover()).found).toBe(0);
    const passes: number[] = [];
    await waitFor(async () => {
      const report = await runner.recover();
      if (report.found > 0) passes.push(report.compensated);
      if (passes.length === 2) down = false; // the service comes back after two more passes
      return (await store.load(err.sagaId!))?.status === 'compensated';
    });
    expect(passes).toEqual([0, 0, 1]);
    expect(service.calls.refunded).toBe(1);
    const undo = (await runner.history(err.sagaId!)).filter((e) => e.action === 'compensate');
    expect(undo.map((e) => e.status)).toEqual(['failed', 'failed', 'failed', 'completed']);
    expect(await store.load(err.sagaId!)).toMatchObject({ leaseOwner: null, leaseUntil: null });
    expect(await runner.health()).toEqual({ needsOperator: 0, retrying: 0, active: 0 });
  });

  it('once its budget is spent the saga waits for an operator, and health and recovery say so', async () => {
    const store = createInMemorySagaStore();
    let down = true;
    const service = downstream(() => down);
    const saga = chargeSaga('budget', service.refund);
    const runner = createSagaRunner({
      store,
      sagas: [saga],
      compensation: quick({ retryForMs: 30, coolDownMs: 40, budgetMs: 200 }),
      onError: never,
    });
    const err = (await runner.run(saga, { n: 1 }).catch((e) => e)) as SagaFailedError;
    expect(err.retryAt).toBeDefined();
    let needsOperator = 0;
    await waitFor(async () => {
      needsOperator += (await runner.recover()).needsOperator;
      return needsOperator > 0;
    });
    expect(needsOperator).toBe(1);
    expect(await store.load(err.sagaId!)).toMatchObject({
      status: 'compensation_failed',
      leaseOwner: null,
      leaseUntil: null,
    });
    expect(await runner.health()).toEqual({ needsOperator: 1, retrying: 0, active: 0 });
    expect((await runner.recover()).found).toBe(0);
    // An operator fixes the cause and resumes it.
    down = false;
    await expect(runner.resume(err.sagaId!).done()).rejects.toMatchObject({ status: 'compensated' });
    expect(await runner.health()).toEqual({ needsOperator: 0, retrying: 0, active: 0 });
  });

  it('a compensation error that is not retried needs an operator at once', async () => {
    const service = downstream(
      () => true,
      () => new ValidationError('refund', [{ path: ['amount'], message: 'negative', code: 'too_small' }]),
    );
    const runner = createSagaRunner({ store: createInMemorySagaStore(), compensation: quick() });
    const err = (await runner
      .run(chargeSaga('hopeless', service.refund), { n: 1 })
      .catch((e) => e)) as SagaFailedError;
    expect(err.status).toBe('compensation_failed');
    expect(err.retryAt).toBeUndefined();
    expect(service.calls.refund).toBe(1);
    expect(await runner.health()).toMatchObject({ needsOperator: 1, retrying: 0 });
  });

  it('by default a pass retries for 10 s with backoff from 1 s, then recovery retries after 30 s for 24 h', async () => {
    let clock = 1_000_000;
    const store = createInMemorySagaStore();
    const service = downstream(() => {
      clock += 1_000; // each call takes a second
      return true;
    });
    const runner = createSagaRunner({ store, now: () => clock, random: () => 0 });
    const err = (await runner
      .run(chargeSaga('defaults', service.refund), { n: 1 })
      .catch((e) => e)) as SagaFailedError;
    // Attempts at 0 s, 1 s, ... 10 s (jitter drew 0): the next would start after the 10 s window.
    expect(service.calls.refund).toBe(11);
    expect(err.retryAt).toBe(clock + 30_000);
    // Later passes, until the budget of 24 h from the first attempt is spent: a pass (11 s here) whose retry
    // time would still fall inside the budget sets one, the next does not.
    const budgetEnd = 1_000_000 + 24 * 3_600_000;
    clock = budgetEnd - 30_000 - 11_000 - 1;
    const near = (await runner
      .resume(err.sagaId!)
      .done()
      .catch((e) => e)) as SagaFailedError;
    expect(near.retryAt).toBe(budgetEnd - 1);
    const spent = (await runner
      .resume(err.sagaId!)
      .done()
      .catch((e) => e)) as SagaFailedError;
    expect(spent.status).toBe('compensation_failed');
    expect(spent.retryAt).toBeUndefined();
  });

  it('a step setting compensationRetry.maxAttempts caps the attempts of each pass', async () => {
    const service = downstream(() => true);
    const saga = defineSaga({
      name: 'capped',
      context: C,
      steps: [
        C.step({
          id: 'charge',
          act: () => 1,
          compensate: () => service.refund(),
          compensationRetry: { maxAttempts: 2, backoff: { initialMs: 1, jitter: 'none' } },
        }),
        C.step({
          id: 'ship',
          act: () => {
            throw new Error('no');
          },
        }),
      ],
    });
    const runner = createSagaRunner({
      store: createInMemorySagaStore(),
      compensation: { retryForMs: 5_000 },
    });
    const err = (await runner.run(saga, { n: 1 }).catch((e) => e)) as SagaFailedError;
    expect(service.calls.refund).toBe(2);
    expect(err.retryAt).toBeDefined();
  });

  it('a compensation whose lease another worker took is aborted and commits nothing', async () => {
    const store = createInMemorySagaStore();
    let aborted: unknown;
    const inside = deferred();
    const saga = defineSaga({
      name: 'fenced-undo',
      context: C,
      steps: [
        C.step({
          id: 'charge',
          act: () => 1,
          compensate: async (_c, _r, tools) => {
            inside.resolve();
            await work(2_000, tools.signal).catch((e: unknown) => {
              aborted = e;
              throw e;
            });
          },
        }),
        C.step({
          id: 'ship',
          act: () => {
            throw new Error('no');
          },
        }),
      ],
    });
    const a = createSagaRunner({ store, leaseMs: 300, owner: 'a', onError: never });
    const id = uuidv7();
    const first = a.run(saga, { n: 1 }, { id }).catch((e: unknown) => e);
    await inside.promise;
    expect(await store.acquire({ id, owner: 'b', now: Date.now() + 301, leaseMs: 300 })).toBeDefined();
    expect(await first).toBeInstanceOf(SagaLeaseError);
    expect(aborted).toBeInstanceOf(SagaLeaseError);
    const log = await store.history(id);
    expect(log.filter((e) => e.action === 'compensate')).toEqual([]);
    expect(await store.load(id)).toMatchObject({ status: 'compensating', leaseOwner: 'b' });
  });

  it.each([
    ['not an object', 'fast'],
    ['a negative retryForMs', { retryForMs: -1 }],
    ['a fractional retryForMs', { retryForMs: 1.5 }],
    ['a zero coolDownMs', { coolDownMs: 0 }],
    ['an oversized coolDownMs', { coolDownMs: 1e20 }],
    ['a NaN budgetMs', { budgetMs: Number.NaN }],
    ['a string budgetMs', { budgetMs: '10' }],
    ['a zero initial backoff', { backoff: { initialMs: 0 } }],
    ['a shrinking backoff', { backoff: { factor: 0.5 } }],
    ['a cap below the first delay', { backoff: { initialMs: 100, maxMs: 10 } }],
    ['an unknown jitter', { backoff: { jitter: 'some' } }],
    ['a backoff that is not an object', { backoff: 5 }],
  ])('refuses a compensation policy with %s at start-up', (_what, compensation) => {
    expect(() =>
      createSagaRunner({
        store: createInMemorySagaStore(),
        compensation: compensation as unknown as CompensationPolicy,
      }),
    ).toThrow(ConfigurationError);
  });

  it('health() refuses names that are not a list of saga names', async () => {
    const runner = createSagaRunner({ store: createInMemorySagaStore() });
    for (const names of ['orders', [1], { 0: 'orders', length: 1 }]) {
      await expect(runner.health({ names: names as unknown as string[] })).rejects.toBeInstanceOf(
        ConfigurationError,
      );
    }
    expect(await runner.health({ names: [] })).toEqual({ needsOperator: 0, retrying: 0, active: 0 });
  });

  it('accepts an endless budget', () => {
    expect(() =>
      createSagaRunner({
        store: createInMemorySagaStore(),
        compensation: { budgetMs: Number.POSITIVE_INFINITY },
      }),
    ).not.toThrow();
  });
});
