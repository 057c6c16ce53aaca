import { createInMemorySagaStore, isCqrsError } from '@cqrs-ts/core';
import { type SagaStore, uuidv7 } from '@cqrs-ts/core/spi';
import {
  createSagaRunner,
  defineSaga,
  SagaContextError,
  SagaCorruptedError,
  type SagaFailedError,
  SagaLeaseError,
  SagaNotFoundError,
  sagaContext,
  UnknownSagaError,
} from '@cqrs-ts/saga';
import { describe, expect, it } from 'vitest';
import { Crash, crashingStore } from './support.ts';

type Ctx = { n: number; done: string[] };
const C = sagaContext<Ctx>();
const LEASE = 60_000;

/** A saga of `steps` steps that fails at `failAt` (if any); counts completed acts per saga/step in `effects`. */
function sagaOf(steps: number, effects: Map<string, number>, failAt?: number) {
  return defineSaga({
    name: `crashy-${steps}${failAt === undefined ? '' : `-f${failAt}`}`,
    context: C,
    steps: Array.from({ length: steps }, (_, i) =>
      C.step({
        id: `s${i}`,
        act: (ctx, tools) => {
          if (i === failAt) throw new Error(`s${i} fails`);
          const key = `${tools.sagaId}/s${i}`;
          effects.set(key, (effects.get(key) ?? 0) + 1);
          ctx.done.push(`s${i}`);
          return i;
        },
        compensate: (ctx, r, tools) => {
          const key = `${tools.sagaId}/s${r}/undo`;
          effects.set(key, (effects.get(key) ?? 0) + 1);
          ctx.done.push(`-s${r}`);
        },
        compensationRetry: { maxAttempts: 1 },
      }),
    ),
  });
}

describe('saga recovery', () => {
  const shapes: { steps: number; failAt?: number }[] = [
    { steps: 3 },
    { steps: 4, failAt: 3 },
    { steps: 5, failAt: 2 },
  ];
  for (const shape of shapes) {
    it(`recovers a ${shape.steps}-step saga${shape.failAt === undefined ? '' : ` failing at ${shape.failAt}`} crashed at every write, before and after it`, async () => {
      const effects = new Map<string, number>();
      const saga = sagaOf(shape.steps, effects, shape.failAt);
      const inner = createInMemorySagaStore();
      let clock = 1_000_000;
      const now = () => clock;
      // Writes of a clean run: create + a commit per completed step (+ compensation commits).
      // create + a commit per step; or create + steps before the failure + the flip + a commit per compensation.
      const writes = shape.failAt === undefined ? shape.steps + 1 : 2 * shape.failAt + 2;
      const ids: string[] = [];
      for (const when of ['before', 'after'] as const) {
        for (let write = 1; write <= writes; write++) {
          const crashing = createSagaRunner({
            store: crashingStore(inner, { write, when }),
            owner: 'doomed',
            leaseMs: LEASE,
            now,
          });
          const id = uuidv7();
          ids.push(id);
          const err = await crashing.run(saga, { n: 0, done: [] }, { id }).catch((e: unknown) => e);
          expect(err, `write ${write} ${when}`).toBeInstanceOf(Crash);
        }
      }
      clock += LEASE + 1;
      const recoverer = createSagaRunner({
        store: inner,
        sagas: [saga],
        owner: 'rescuer',
        leaseMs: LEASE,
        now,
      });
      const interrupted = (await inner.findRecoverable({ now: clock, limit: 1000 })).length;
      expect(interrupted).toBeGreaterThanOrEqual(ids.length - 2);
      const report = await recoverer.recover({ limit: 1000 });
      expect(report.found).toBe(interrupted);
      expect(report.errors).toEqual([]);
      expect((await inner.findRecoverable({ now: clock, limit: 10 })).length).toBe(0);
      for (const id of ids) {
        const record = await inner.load(id);
        if (record === undefined) continue; // crashed before create: nothing happened
        const expected = shape.failAt === undefined ? 'completed' : 'compensated';
        expect(record.status, id).toBe(expected);
        expect(record.leaseOwner).toBeNull();
        const log = await inner.history(id);
        const completed = log
          .filter((e) => e.action === 'act' && e.status === 'completed')
          .map((e) => e.stepId);
        expect(new Set(completed).size).toBe(completed.length);
        // A step recorded as completed ran at most twice (once more only if the crash hit between effect and record).
        for (const [key, count] of effects) if (key.startsWith(id)) expect(count, key).toBeLessThanOrEqual(2);
        if (shape.failAt !== undefined) {
          const undone = log.filter((e) => e.action === 'compensate' && e.status === 'completed');
          expect(undone.map((e) => e.stepId)).toEqual(completed.slice().reverse());
        }
      }
    });
  }

  it('a completed step never runs again after a crash after its record', async () => {
    const effects = new Map<string, number>();
    const saga = sagaOf(3, effects);
    const inner = createInMemorySagaStore();
    let clock = 0;
    const crashing = createSagaRunner({
      store: crashingStore(inner, { write: 3, when: 'after' }),
      leaseMs: LEASE,
      now: () => clock,
    });
    const id = uuidv7();
    await crashing.run(saga, { n: 0, done: [] }, { id }).catch(() => {});
    clock += LEASE + 1;
    const rescuer = createSagaRunner({ store: inner, sagas: [saga], leaseMs: LEASE, now: () => clock });
    expect((await rescuer.recover()).completed).toBe(1);
    expect([...effects.entries()]).toEqual([
      [`${id}/s0`, 1],
      [`${id}/s1`, 1],
      [`${id}/s2`, 1],
    ]);
  });

  it('once compensating, recovery never goes forward again', async () => {
    const effects = new Map<string, number>();
    const saga = sagaOf(4, effects, 2);
    const inner = createInMemorySagaStore();
    let clock = 0;
    // write 1 create, 2-3 steps, 4 flip to compensating, 5 first compensation: crash before it.
    const crashing = createSagaRunner({
      store: crashingStore(inner, { write: 5, when: 'before' }),
      leaseMs: LEASE,
      now: () => clock,
    });
    const id = uuidv7();
    await crashing.run(saga, { n: 0, done: [] }, { id }).catch(() => {});
    expect((await inner.load(id))?.status).toBe('compensating');
    clock += LEASE + 1;
    const rescuer = createSagaRunner({ store: inner, sagas: [saga], leaseMs: LEASE, now: () => clock });
    const report = await rescuer.recover();
    expect(report).toMatchObject({ found: 1, compensated: 1 });
    const log = await inner.history(id);
    expect(log.filter((e) => e.action === 'act').map((e) => `${e.stepId}:${e.status}`)).toEqual([
      's0:completed',
      's1:completed',
      's2:failed',
    ]);
    expect(effects.get(`${id}/s3`)).toBeUndefined();
  });

  it('skips sagas whose lease is live and respects the staleness filter and names', async () => {
    const effects = new Map<string, number>();
    const saga = sagaOf(3, effects);
    const inner = createInMemorySagaStore();
    let clock = 0;
    const crashing = createSagaRunner({
      store: crashingStore(inner, { write: 2, when: 'before' }),
      leaseMs: LEASE,
      now: () => clock,
    });
    await crashing.run(saga, { n: 0, done: [] }).catch(() => {});
    const rescuer = createSagaRunner({ store: inner, sagas: [saga], leaseMs: LEASE, now: () => clock });
    expect((await rescuer.recover()).found).toBe(0); // lease still live
    clock += LEASE + 1;
    expect((await rescuer.recover({ staleAfterMs: LEASE * 2 })).found).toBe(0);
    expect((await rescuer.recover({ names: ['other'] })).found).toBe(0);
    expect(await rescuer.recover({ staleAfterMs: LEASE })).toMatchObject({ found: 1, completed: 1 });
  });

  it('two workers recovering at once never run the same saga concurrently', async () => {
    const running = new Set<string>();
    let overlaps = 0;
    const acts = new Map<string, number>();
    const saga = defineSaga({
      name: 'exclusive',
      context: C,
      steps: ['a', 'b', 'c'].map((id) =>
        C.step({
          id,
          act: async (_c, tools) => {
            if (running.has(tools.sagaId)) overlaps++;
            running.add(tools.sagaId);
            // a step that yields (the subject): another worker may try the saga meanwhile
            await new Promise((r) => setTimeout(r, 1));
            running.delete(tools.sagaId);
            const k = `${tools.sagaId}/${id}`;
            acts.set(k, (acts.get(k) ?? 0) + 1);
          },
        }),
      ),
    });
    const inner = createInMemorySagaStore();
    let clock = 0;
    const now = () => clock;
    for (let i = 0; i < 40; i++) {
      const crashing = createSagaRunner({
        store: crashingStore(inner, { write: 1 + (i % 3), when: 'after' }),
        leaseMs: LEASE,
        now,
      });
      await crashing.run(saga, { n: i, done: [] }).catch(() => {});
    }
    clock += LEASE + 1;
    const workers = [1, 2].map((w) =>
      createSagaRunner({ store: inner, sagas: [saga], owner: `w${w}`, leaseMs: LEASE, now }),
    );
    const reports = await Promise.all(workers.map((w) => w.recover({ concurrency: 4 })));
    expect(overlaps).toBe(0);
    expect(reports[0]!.completed + reports[1]!.completed).toBe(40);
    expect(reports[0]!.skipped + reports[1]!.skipped).toBe(40);
    for (const [k, n] of acts) expect(n, k).toBe(1);
  });

  it('a worker that lost its lease stops without writing', async () => {
    const inner = createInMemorySagaStore();
    let clock = 0;
    let release!: () => void;
    const gate = new Promise<void>((r) => {
      release = r;
    });
    let entered!: () => void;
    const inside = new Promise<void>((r) => {
      entered = r;
    });
    let entries = 0;
    let secondInside!: () => void;
    const takenOver = new Promise<void>((r) => {
      secondInside = r;
    });
    const saga = defineSaga({
      name: 'lease',
      context: C,
      steps: [
        C.step({
          id: 'slow',
          act: async () => {
            entries++;
            if (entries === 1) entered();
            else secondInside();
            await gate;
          },
        }),
        C.step({ id: 'next', act: () => 1 }),
      ],
    });
    const a = createSagaRunner({ store: inner, leaseMs: LEASE, now: () => clock, owner: 'a' });
    const b = createSagaRunner({ store: inner, sagas: [saga], leaseMs: LEASE, now: () => clock, owner: 'b' });
    const id = uuidv7();
    const first = a.run(saga, { n: 0, done: [] }, { id }).catch((e: unknown) => e);
    await inside;
    clock += LEASE + 1;
    const second = b.resume(id).done();
    await takenOver; // b holds the lease and runs the step again while a is still inside it
    release();
    expect((await second).status).toBe('completed');
    expect(await first).toBeInstanceOf(SagaLeaseError);
    expect((await inner.history(id)).map((e) => e.stepId)).toEqual(['slow', 'next']);
    const busy = await createSagaRunner({ store: inner, sagas: [saga] })
      .resume(id)
      .done();
    expect(busy.status).toBe('completed');
  });

  it('keeps the deadline across recovery: a saga recovered after it compensates', async () => {
    const undo: string[] = [];
    const saga = defineSaga({
      name: 'timed',
      context: C,
      deadlineMs: 5_000,
      steps: [
        C.step({ id: 'a', act: () => 1, compensate: () => void undo.push('a') }),
        C.step({ id: 'b', act: () => 2 }),
      ],
    });
    const inner = createInMemorySagaStore();
    let clock = 0;
    const crashing = createSagaRunner({
      store: crashingStore(inner, { write: 2, when: 'after' }),
      leaseMs: LEASE,
      now: () => clock,
    });
    const id = uuidv7();
    await crashing.run(saga, { n: 0, done: [] }, { id }).catch(() => {});
    expect((await inner.load(id))?.deadlineAt).toBe(5_000);
    clock += LEASE + 1;
    const rescuer = createSagaRunner({ store: inner, sagas: [saga], leaseMs: LEASE, now: () => clock });
    expect(await rescuer.recover()).toMatchObject({ found: 1, compensated: 1 });
    expect(undo).toEqual(['a']);
    expect(JSON.parse((await inner.load(id))!.error!)).toMatchObject({
      name: 'SagaDeadlineError',
      reason: 'deadline',
    });
  });

  it('recover({ maxAttempts }) leaves sagas that were taken too often', async () => {
    const saga = sagaOf(2, new Map());
    const inner = createInMemorySagaStore();
    let clock = 0;
    const id = uuidv7();
    await createSagaRunner({
      store: crashingStore(inner, { write: 1, when: 'after' }),
      leaseMs: 10,
      now: () => clock,
    })
      .run(saga, { n: 0, done: [] }, { id })
      .catch(() => {});
    for (let i = 0; i < 2; i++) {
      clock += 11;
      await inner.acquire({ id, owner: `dead-${i}`, now: clock, leaseMs: 10 }); // two more workers died
    }
    clock += 11;
    const rescuer = createSagaRunner({ store: inner, sagas: [saga], leaseMs: 10, now: () => clock });
    expect((await rescuer.recover({ maxAttempts: 3 })).found).toBe(0);
    expect(await rescuer.recover({ maxAttempts: 4 })).toMatchObject({ found: 1, completed: 1 });
  });

  it('renews the lease while a long step runs, so no other worker can take the saga', async () => {
    const store = createInMemorySagaStore();
    const saga = defineSaga({
      name: 'long',
      context: C,
      steps: [C.step({ id: 'slow', act: () => new Promise((r) => setTimeout(r, 1000)) })],
    });
    const a = createSagaRunner({ store, leaseMs: 300, owner: 'a' });
    const b = createSagaRunner({ store, sagas: [saga], leaseMs: 300, owner: 'b' });
    const id = uuidv7();
    const first = a.run(saga, { n: 0, done: [] }, { id });
    const refusals: unknown[] = [];
    // Tries until well past one lease length, all while the step still runs.
    for (let i = 0; i < 6; i++) {
      await new Promise((r) => setTimeout(r, 100));
      refusals.push(
        await b
          .resume(id)
          .done()
          .catch((e: unknown) => e),
      );
    }
    expect((await first).status).toBe('completed');
    expect(refusals.every((e) => e instanceof SagaLeaseError)).toBe(true);
    expect((await store.history(id)).map((e) => e.stepId)).toEqual(['slow']);
  });

  describe('bad input', () => {
    const plain = defineSaga({ name: 'plain', context: C, steps: [C.step({ id: 'a', act: () => 1 })] });

    it.each([
      ['a Date', { n: 1, done: [], at: new Date() }, ['at']],
      ['a function', { n: 1, done: [], f: () => 1 }, ['f']],
      ['a bigint', { n: 1n, done: [] }, ['n']],
      ['NaN', { n: Number.NaN, done: [] }, ['n']],
      ['a Map', { n: 1, done: [], m: new Map() }, ['m']],
      ['undefined in an array', { n: 1, done: [undefined] }, ['done', 0]],
    ])('refuses a context holding %s, storing nothing', async (_what, context, path) => {
      const store = createInMemorySagaStore();
      const runner = createSagaRunner({ store });
      const err = await runner.run(plain, context as unknown as Ctx).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(SagaContextError);
      expect(isCqrsError(err, 'CQRS_SAGA')).toBe(true);
      expect((err as SagaContextError).path).toEqual(path);
      expect(store.size).toBe(0);
    });

    it('refuses a cyclic context', async () => {
      const store = createInMemorySagaStore();
      const c: Record<string, unknown> = { n: 1, done: [] };
      c.self = c;
      const err = await createSagaRunner({ store })
        .run(plain, c as unknown as Ctx)
        .catch((e: unknown) => e);
      expect(err).toBeInstanceOf(SagaContextError);
      expect(store.size).toBe(0);
    });

    it('validates the context with the saga schema', async () => {
      const schema = {
        '~standard': {
          version: 1 as const,
          vendor: 'test',
          validate: (v: unknown) =>
            typeof (v as Ctx).n === 'number'
              ? { value: v as Ctx }
              : { issues: [{ message: 'n must be a number', path: ['n'] }] },
        },
      };
      const saga = defineSaga({
        name: 'schema',
        context: schema,
        steps: [{ id: 'a', act: (c: Ctx) => c.n }],
      });
      const runner = createSagaRunner({ store: createInMemorySagaStore() });
      const err = (await runner.run(saga, { n: 'x' } as unknown as Ctx).catch((e) => e)) as SagaContextError;
      expect(err).toBeInstanceOf(SagaContextError);
      expect(err.path).toEqual(['n']);
      expect((await runner.run(saga, { n: 2, done: [] })).results.a).toBe(2);
    });

    it('a step that leaves an unserializable context fails and compensates', async () => {
      const undo: string[] = [];
      const saga = defineSaga({
        name: 'dirty',
        context: C,
        steps: [
          C.step({ id: 'a', act: () => 1, compensate: () => void undo.push('a') }),
          C.step({
            id: 'b',
            act: (c) => {
              (c as unknown as { when: Date }).when = new Date();
            },
          }),
        ],
      });
      const err = (await createSagaRunner({ store: createInMemorySagaStore() })
        .run(saga, { n: 1, done: [] })
        .catch((e) => e)) as SagaFailedError;
      expect(err.cause).toBeInstanceOf(SagaContextError);
      expect(undo).toEqual(['a']);
      expect(err.context).toEqual({ n: 1, done: [] });
    });

    const seed = async (store: SagaStore, name: string, tamper?: (id: string) => Promise<void>) => {
      const id = uuidv7();
      await store.create({
        id,
        name,
        definitionVersion: 1,
        context: '{"n":1,"done":[]}',
        owner: 'dead',
        now: 0,
        leaseMs: 1,
        deadlineAt: null,
      });
      await tamper?.(id);
      return id;
    };

    it('an unknown saga name in storage is a typed error and the other sagas keep running', async () => {
      const store = createInMemorySagaStore();
      const ghost = await seed(store, 'ghost');
      const good = await seed(store, 'plain');
      const runner = createSagaRunner({ store, sagas: [plain], onError: () => {} });
      await expect(runner.resume(ghost).done()).rejects.toBeInstanceOf(UnknownSagaError);
      await expect(runner.resume(uuidv7()).done()).rejects.toBeInstanceOf(SagaNotFoundError);
      const report = await runner.recover({ names: ['ghost', 'plain'] });
      expect(report.completed).toBe(1);
      expect(report.errors.map((e) => [e.sagaId, (e.error as Error).name])).toEqual([
        [ghost, 'UnknownSagaError'],
      ]);
      expect((await store.load(good))?.status).toBe('completed');
      expect((await store.load(ghost))?.status).toBe('running');
    });

    it.each([
      ['an unknown step id', { stepId: 'zzz', result: '1' }],
      ['a result that is not JSON', { stepId: 'a', result: '{oops' }],
      ['an unknown action', { stepId: 'a', result: '1', action: 'jump' }],
      ['a slot out of range', { stepId: 'a', result: '1', slot: 7 }],
      ['a cursor that disagrees with the log', { stepId: 'b', result: '1', slot: 1 }],
    ])(
      'a corrupted log row (%s) marks the saga failed with a typed error; the others keep running',
      async (_w, row) => {
        const store = createInMemorySagaStore();
        const plain2 = defineSaga({
          name: 'plain2',
          context: C,
          steps: [C.step({ id: 'a', act: () => 1 }), C.step({ id: 'b', act: () => 2 })],
        });
        const bad = await seed(store, 'plain2', async (id) => {
          await store.commit({
            id,
            owner: 'dead',
            expectedVersion: 1,
            now: 0,
            status: 'running',
            context: '{"n":1,"done":[]}',
            cursor: 1,
            error: null,
            log: [
              {
                slot: 0,
                action: 'act',
                status: 'completed',
                attempts: 1,
                error: null,
                startedAt: 0,
                at: 0,
                ...row,
              } as never,
            ],
            lease: 1,
          });
        });
        const good = await seed(store, 'plain2');
        const runner = createSagaRunner({ store, sagas: [plain2], onError: () => {} });
        const report = await runner.recover();
        expect(report.completed).toBe(1);
        expect(report.errors).toHaveLength(1);
        expect(report.errors[0]!.error).toBeInstanceOf(SagaCorruptedError);
        expect(isCqrsError(report.errors[0]!.error, 'CQRS_SAGA')).toBe(true);
        expect(await store.load(bad)).toMatchObject({ status: 'failed', leaseOwner: null });
        expect((await store.load(good))?.status).toBe('completed');
        // Never picked again by recovery.
        expect((await runner.recover()).found).toBe(0);
      },
    );

    it('a corrupted context marks the saga failed', async () => {
      const store = createInMemorySagaStore();
      const id = uuidv7();
      await store.create({
        id,
        name: 'plain',
        definitionVersion: 1,
        context: '{not json',
        owner: 'x',
        now: 0,
        leaseMs: 1,
        deadlineAt: null,
      });
      const runner = createSagaRunner({ store, sagas: [plain] });
      await expect(runner.resume(id).done()).rejects.toBeInstanceOf(SagaCorruptedError);
      expect((await store.load(id))?.status).toBe('failed');
    });
  });
});
