import {
  AggregateRoot,
  type AnyEvent,
  createInMemoryOutboxStore,
  createInMemorySagaStore,
  createMediator,
  defineCommand,
  defineEvent,
  handle,
  on,
  TimeoutError,
} from '@cqrs-ts/core';
import {
  CircuitOpenError,
  createCircuitBreaker,
  createInMemoryCircuitStateStore,
  createSagaRunner,
  defineSaga,
  SagaAbortedError,
  SagaDeadlineError,
  SagaFailedError,
  SagaStateError,
  type SagaUpdate,
  type StepTools,
  sagaContext,
} from '@cqrs-ts/saga';
import { describe, expect, expectTypeOf, it } from 'vitest';
import { countingStore, tick } from './support.ts';

type Ctx = { orderId: string; trail: string[]; amount: number };
const C = sagaContext<Ctx>();
const fast = { backoff: { initialMs: 1, maxMs: 2, jitter: 'none' as const } };

/** A 3-step order saga whose steps log into `ctx.trail` and into `calls`. */
function orderSaga(
  calls: string[],
  opts: { failAt?: string; compensationFails?: string[]; name?: string } = {},
) {
  const mk = (id: string, compensable = true) =>
    C.step({
      id,
      act: async (ctx) => {
        calls.push(`act:${id}`);
        if (opts.failAt === id) throw new Error(`${id} failed`);
        ctx.trail.push(id);
        return { id, n: ctx.trail.length };
      },
      ...(compensable
        ? {
            compensate: async (ctx: Ctx, r: { id: string; n: number }) => {
              calls.push(`compensate:${r.id}`);
              if (opts.compensationFails?.includes(id)) throw new Error(`undo ${id} failed`);
              ctx.trail.push(`-${id}`);
            },
          }
        : {}),
      compensationRetry: { maxAttempts: 2, ...fast },
    });
  return defineSaga({
    name: opts.name ?? 'orders',
    context: C,
    steps: [mk('reserve'), mk('notify', false), mk('charge'), mk('ship')],
  });
}

const ctx = (): Ctx => ({ orderId: 'o-1', trail: [], amount: 10 });

describe('saga runner', () => {
  it('runs steps in order, streams typed results and records one commit per step', async () => {
    const store = countingStore(createInMemorySagaStore());
    const runner = createSagaRunner({ store });
    const calls: string[] = [];
    const saga = orderSaga(calls);
    const updates: SagaUpdate[] = [];
    const execution = runner.start(saga, ctx());
    for await (const u of execution) {
      updates.push(u);
      if (u.action === 'act' && u.step === 'charge')
        expectTypeOf(u.result).toEqualTypeOf<{ id: string; n: number }>();
    }
    expect(updates.map((u) => `${u.action}:${u.step}`)).toEqual([
      'act:reserve',
      'act:notify',
      'act:charge',
      'act:ship',
    ]);
    expect(updates[2]).toMatchObject({
      sagaId: execution.sagaId,
      result: { id: 'charge', n: 3 },
      attempts: 1,
    });
    expect(store.calls).toEqual({ create: 1, commit: 4 });
    const record = await store.load(execution.sagaId);
    expect(record).toMatchObject({ status: 'completed', cursor: 4, leaseOwner: null, version: 5 });
    expect(JSON.parse(record!.context).trail).toEqual(['reserve', 'notify', 'charge', 'ship']);
    const log = await runner.history(execution.sagaId);
    expect(log.map((e) => `${e.action}:${e.stepId}:${e.status}`)).toEqual([
      'act:reserve:completed',
      'act:notify:completed',
      'act:charge:completed',
      'act:ship:completed',
    ]);
  });

  it('run() resolves the final state with results by step id', async () => {
    const runner = createSagaRunner({ store: createInMemorySagaStore() });
    const out = await runner.run(orderSaga([]), ctx());
    expect(out.status).toBe('completed');
    expect(out.context.trail).toHaveLength(4);
    expect(out.results.ship).toEqual({ id: 'ship', n: 4 });
    expectTypeOf(out.results.reserve).toEqualTypeOf<{ id: string; n: number } | undefined>();
  });

  it('compensates completed steps in reverse order, skipping steps without compensation', async () => {
    const store = createInMemorySagaStore();
    const runner = createSagaRunner({ store });
    const calls: string[] = [];
    const err = await runner.run(orderSaga(calls, { failAt: 'ship' }), ctx()).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SagaFailedError);
    const failed = err as SagaFailedError;
    expect(failed.code).toBe('CQRS_SAGA');
    expect(failed.status).toBe('compensated');
    expect(failed.stepId).toBe('ship');
    expect((failed.cause as Error).message).toBe('ship failed');
    expect(failed.compensationFailures).toEqual([]);
    expect(calls).toEqual([
      'act:reserve',
      'act:notify',
      'act:charge',
      'act:ship',
      'compensate:charge',
      'compensate:reserve',
    ]);
    expect((failed.context as Ctx).trail).toEqual(['reserve', 'notify', 'charge', '-charge', '-reserve']);
    const record = await store.load(failed.sagaId!);
    expect(record).toMatchObject({ status: 'compensated', leaseOwner: null });
    expect(JSON.parse(record!.error!)).toMatchObject({ message: 'ship failed' });
    const log = await runner.history(failed.sagaId!);
    expect(log.map((e) => `${e.action}:${e.stepId}:${e.status}`).slice(3)).toEqual([
      'act:ship:failed',
      'compensate:charge:completed',
      'compensate:reserve:completed',
    ]);
  });

  it('streams compensations and ends the stream with the failure', async () => {
    const runner = createSagaRunner({ store: createInMemorySagaStore() });
    const seen: string[] = [];
    const err = await (async () => {
      for await (const u of runner.start(orderSaga([], { failAt: 'charge' }), ctx())) {
        seen.push(`${u.action}:${u.step}${u.action === 'compensate' ? `:${u.status}` : ''}`);
      }
    })().catch((e: unknown) => e);
    expect(seen).toEqual(['act:reserve', 'act:notify', 'compensate:reserve:completed']);
    expect(err).toBeInstanceOf(SagaFailedError);
  });

  it('a failure at the first step ends compensated without compensations', async () => {
    const store = countingStore(createInMemorySagaStore());
    const runner = createSagaRunner({ store });
    const err = (await runner
      .run(orderSaga([], { failAt: 'reserve' }), ctx())
      .catch((e) => e)) as SagaFailedError;
    expect(err.status).toBe('compensated');
    expect(store.calls).toEqual({ create: 1, commit: 1 });
  });

  it('a compensation that keeps failing ends compensation_failed, continues the others, and can be resumed', async () => {
    const store = createInMemorySagaStore();
    const runner = createSagaRunner({ store });
    const calls: string[] = [];
    const failing = ['charge'];
    const saga = orderSaga(calls, { failAt: 'ship', compensationFails: failing });
    const err = (await runner.run(saga, ctx()).catch((e) => e)) as SagaFailedError;
    expect(err.status).toBe('compensation_failed');
    expect((err.cause as Error).message).toBe('ship failed');
    expect(err.compensationFailures.map((f) => [f.stepId, (f.error as Error).message])).toEqual([
      ['charge', 'undo charge failed'],
    ]);
    expect(calls.filter((c) => c.startsWith('compensate'))).toEqual([
      'compensate:charge',
      'compensate:charge',
      'compensate:reserve',
    ]);
    const listed = await runner.list({ statuses: ['compensation_failed'], limit: 10 });
    expect(listed.map((r) => r.id)).toEqual([err.sagaId]);
    const log = await runner.history(err.sagaId!);
    expect(log.at(-2)).toMatchObject({
      action: 'compensate',
      stepId: 'charge',
      status: 'failed',
      attempts: 2,
    });
    // Recovery never picks it; an operator resumes it after fixing the cause.
    expect((await runner.recover()).found).toBe(0);
    failing.length = 0;
    calls.length = 0;
    const again = (await runner
      .resume(err.sagaId!)
      .done()
      .catch((e) => e)) as SagaFailedError;
    expect(again.status).toBe('compensated');
    expect(calls).toEqual(['compensate:charge']);
    expect((await store.load(err.sagaId!))?.status).toBe('compensated');
  });

  it('retries a step with backoff and honours the error filter', async () => {
    let n = 0;
    const saga = defineSaga({
      name: 'retrying',
      context: C,
      steps: [
        C.step({
          id: 'flaky',
          retry: { maxAttempts: 4, ...fast },
          act: (_ctx, tools) => {
            n++;
            if (tools.attempt < 3) throw new Error(`try ${tools.attempt}`);
            return tools.attempt;
          },
        }),
        C.step({
          id: 'picky',
          retry: { maxAttempts: 5, ...fast, retryOn: (e) => (e as Error).message !== 'fatal' },
          act: () => {
            n++;
            throw new Error('fatal');
          },
        }),
      ],
    });
    const runner = createSagaRunner({ store: createInMemorySagaStore() });
    const err = (await runner.run(saga, ctx()).catch((e) => e)) as SagaFailedError;
    expect(n).toBe(4);
    const log = await runner.history(err.sagaId!);
    expect(log.map((e) => [e.stepId, e.status, e.attempts])).toEqual([
      ['flaky', 'completed', 3],
      ['picky', 'failed', 1],
    ]);
    expect(JSON.parse(log[0]!.result!)).toBe(3);
  });

  it('times out a step that ignores its signal, aborting the signal', async () => {
    let signal: AbortSignal | undefined;
    const saga = defineSaga({
      name: 'slow',
      context: C,
      steps: [
        C.step({
          id: 'hang',
          timeoutMs: 20,
          retry: { maxAttempts: 2, ...fast },
          act: (_ctx, tools) => {
            signal = tools.signal;
            return new Promise<never>(() => {});
          },
        }),
      ],
    });
    const runner = createSagaRunner({ store: createInMemorySagaStore() });
    const err = (await runner.run(saga, ctx()).catch((e) => e)) as SagaFailedError;
    expect(err.cause).toBeInstanceOf(TimeoutError);
    expect(signal?.aborted).toBe(true);
    expect((await runner.history(err.sagaId!))[0]).toMatchObject({ status: 'failed', attempts: 2 });
  });

  it('compensates when the saga passes its deadline', async () => {
    const calls: string[] = [];
    const saga = defineSaga({
      name: 'deadline',
      context: C,
      deadlineMs: 40,
      steps: [
        C.step({ id: 'a', act: () => 1, compensate: () => void calls.push('undo a') }),
        C.step({
          id: 'b',
          retry: { maxAttempts: 10, ...fast },
          act: (_c, tools) =>
            new Promise((_, reject) =>
              tools.signal.addEventListener('abort', () => reject(tools.signal.reason)),
            ),
        }),
      ],
    });
    const runner = createSagaRunner({ store: createInMemorySagaStore() });
    const err = (await runner.run(saga, ctx()).catch((e) => e)) as SagaFailedError;
    expect(err.cause).toBeInstanceOf(SagaDeadlineError);
    expect(err.status).toBe('compensated');
    expect(calls).toEqual(['undo a']);
    const log = await runner.history(err.sagaId!);
    expect(log[1]).toMatchObject({ stepId: 'b', status: 'failed', attempts: 1 });
  });

  it('runs the fallback with the context restored, records it, and compensates with its compensation', async () => {
    const calls: string[] = [];
    const saga = defineSaga({
      name: 'fallbacks',
      context: C,
      steps: [
        C.step({
          id: 'charge-card',
          act: (c) => {
            c.trail.push('dirty');
            throw new Error('card declined');
          },
          compensate: () => void calls.push('refund card'),
          fallback: {
            id: 'charge-invoice',
            act: (c) => {
              calls.push(`invoice sees ${c.trail.join(',') || 'clean'}`);
              return 'inv-1';
            },
            compensate: (_c, r) => void calls.push(`cancel ${r}`),
          },
        }),
        C.step({ id: 'ship', act: () => Promise.reject(new Error('no truck')) }),
      ],
    });
    const runner = createSagaRunner({ store: createInMemorySagaStore() });
    const updates: SagaUpdate[] = [];
    const err = await (async () => {
      for await (const u of runner.start(saga, ctx())) updates.push(u);
    })().catch((e: unknown) => e);
    expect(updates[0]).toMatchObject({
      action: 'act',
      step: 'charge-card',
      ran: 'charge-invoice',
      fallback: true,
    });
    expect(calls).toEqual(['invoice sees clean', 'cancel inv-1']);
    const log = await runner.history((err as SagaFailedError).sagaId!);
    expect(log.map((e) => `${e.action}:${e.stepId}:${e.status}`)).toEqual([
      'act:charge-card:failed',
      'act:charge-invoice:completed',
      'act:ship:failed',
      'compensate:charge-invoice:completed',
    ]);
  });

  it('a fallback guarded by an open circuit skips the primary, also in another process sharing the state', async () => {
    const shared = createInMemoryCircuitStateStore();
    const primaryCalls: string[] = [];
    const saga = defineSaga({
      name: 'breaker',
      context: C,
      steps: [
        C.step({
          id: 'charge',
          circuitBreaker: true,
          act: (c) => {
            primaryCalls.push(c.orderId);
            throw new Error('gateway down');
          },
          fallback: { id: 'charge-later', act: () => 'queued' },
        }),
      ],
    });
    const breaker = () => createCircuitBreaker({ failMax: 2, resetTimeoutMs: 60_000, store: shared });
    const a = createSagaRunner({ store: createInMemorySagaStore(), breaker: breaker() });
    const b = createSagaRunner({ store: createInMemorySagaStore(), breaker: breaker() });
    for (const id of ['o1', 'o2', 'o3']) {
      const out = await a.run(saga, { ...ctx(), orderId: id });
      expect(out.results.charge).toBe('queued');
    }
    expect(primaryCalls).toEqual(['o1', 'o2']);
    const out = await b.run(saga, { ...ctx(), orderId: 'o4' });
    expect(out.results.charge).toBe('queued');
    expect(primaryCalls).toEqual(['o1', 'o2']);
    const log = await b.history(out.sagaId);
    expect(JSON.parse(log[0]!.error!)).toMatchObject({ name: 'CircuitOpenError', code: 'CQRS_CIRCUIT_OPEN' });
  });

  it('without a fallback an open circuit fails the step with CircuitOpenError', async () => {
    const breaker = createCircuitBreaker({ failMax: 1 });
    const saga = defineSaga({
      name: 'breaker2',
      context: C,
      steps: [C.step({ id: 'x', circuitBreaker: true, act: () => Promise.reject(new Error('down')) })],
    });
    const runner = createSagaRunner({ store: createInMemorySagaStore(), breaker });
    await runner.run(saga, ctx()).catch(() => {});
    const err = (await runner.run(saga, ctx()).catch((e) => e)) as SagaFailedError;
    expect(err.cause).toBeInstanceOf(CircuitOpenError);
    expect(breaker.status('breaker2/x')).toBe('open');
  });

  it('stopping the stream early pauses the saga; resume continues without re-running completed steps', async () => {
    const store = createInMemorySagaStore();
    const runner = createSagaRunner({ store });
    const calls: string[] = [];
    const saga = orderSaga(calls);
    const execution = runner.start(saga, ctx());
    for await (const u of execution) {
      if (u.step === 'notify') break;
    }
    expect(calls).toEqual(['act:reserve', 'act:notify']);
    expect(await store.load(execution.sagaId)).toMatchObject({
      status: 'paused',
      leaseOwner: null,
      cursor: 2,
    });
    expect((await runner.recover()).found).toBe(0);
    const rest: string[] = [];
    for await (const u of runner.resume(execution.sagaId)) rest.push(u.step);
    expect(rest).toEqual(['charge', 'ship']);
    expect(calls).toEqual(['act:reserve', 'act:notify', 'act:charge', 'act:ship']);
    expect((await store.load(execution.sagaId))?.status).toBe('completed');
  });

  it('abort() interrupts the running step and compensates', async () => {
    const calls: string[] = [];
    let started!: () => void;
    const running = new Promise<void>((r) => {
      started = r;
    });
    const saga = defineSaga({
      name: 'abortable',
      context: C,
      steps: [
        C.step({ id: 'a', act: () => 'a', compensate: () => void calls.push('undo a') }),
        C.step({
          id: 'b',
          act: (_c, tools) =>
            new Promise((_, reject) => {
              started();
              tools.signal.addEventListener('abort', () => reject(tools.signal.reason));
            }),
          compensate: () => void calls.push('undo b'),
        }),
        C.step({ id: 'c', act: () => void calls.push('c ran') }),
      ],
    });
    const runner = createSagaRunner({ store: createInMemorySagaStore() });
    const execution = runner.start(saga, ctx());
    const done = execution.done().catch((e: unknown) => e);
    await running;
    const outcome = await execution.abort('customer cancelled');
    expect(outcome.status).toBe('compensated');
    expect(outcome.error).toBeInstanceOf(SagaAbortedError);
    expect(calls).toEqual(['undo a']);
    expect(await done).toBeInstanceOf(SagaFailedError);
  });

  it('abort() of a paused saga through resume compensates it', async () => {
    const store = createInMemorySagaStore();
    const runner = createSagaRunner({ store });
    const calls: string[] = [];
    const execution = runner.start(orderSaga(calls), ctx());
    for await (const _ of execution) break;
    const outcome = await runner.resume(execution.sagaId).abort();
    expect(outcome.status).toBe('compensated');
    expect(calls).toEqual(['act:reserve', 'compensate:reserve']);
  });

  it('abort() of an execution whose stream was stopped says to resume it', async () => {
    const runner = createSagaRunner({ store: createInMemorySagaStore() });
    const execution = runner.start(orderSaga([]), ctx());
    for await (const _ of execution) break;
    const err = await execution.abort().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SagaStateError);
    expect((err as SagaStateError).status).toBe('paused');
  });

  it('sends commands through the mediator and publishes step events after the record', async () => {
    const Reserve = defineCommand('inventory.reserve').withPayload<{ sku: string }>().returns<string>();
    const Reserved = defineEvent('inventory.reserved').withPayload<{ sku: string }>();
    const published: string[] = [];
    const mediator = createMediator({
      handlers: [
        handle(Reserve, (cmd) => `res-${cmd.payload.sku}`),
        on(Reserved, (e) => void published.push(e.payload.sku)),
      ],
    });
    const saga = defineSaga({
      name: 'mediated',
      context: C,
      steps: [
        C.step({
          id: 'reserve',
          act: async (_c, tools) => {
            const id = await tools.send(Reserve.create({ sku: 'sku-1' }));
            tools.publish(Reserved.create({ sku: 'sku-1' }));
            return id;
          },
        }),
      ],
    });
    const runner = createSagaRunner({ store: createInMemorySagaStore(), mediator });
    const out = await runner.run(saga, ctx());
    expect(out.results.reserve).toBe('res-sku-1');
    expect(published).toEqual(['sku-1']);
  });

  it('stages events in the outbox with the step record, from the same class instance that acted (new instance per lookup)', async () => {
    const Charged = defineEvent('payments.charged').withPayload<{ n: number }>();
    const Refunded = defineEvent('payments.refunded').withPayload<{ n: number }>();
    const instances: ChargeStep[] = [];
    let failFirst = true;
    class ChargeStep extends AggregateRoot<AnyEvent> {
      readonly n = instances.push(this);
      act(_c: Ctx, tools: StepTools) {
        this.raise(Charged.create({ n: this.n }) as AnyEvent);
        if (tools.attempt === 1 && failFirst) throw new Error('flaky');
        return this.n;
      }
      compensate(_c: Ctx, result: number) {
        expect(result).toBe(this.n);
        this.raise(Refunded.create({ n: this.n }) as AnyEvent);
      }
      protected override apply(): void {}
    }
    const outbox = createInMemoryOutboxStore();
    const store = createInMemorySagaStore({ outbox });
    const saga = defineSaga({
      name: 'classy',
      context: C,
      steps: [
        { id: 'charge', use: ChargeStep, retry: { maxAttempts: 2, ...fast } },
        C.step({ id: 'fail', act: () => Promise.reject(new Error('stop')) }),
      ],
    });
    const runner = createSagaRunner({
      store,
      outbox: true,
      resolver: { resolve: (token) => new (token as unknown as new () => never)() },
    });
    await runner.run(saga, ctx()).catch(() => {});
    failFirst = false;
    expect(instances).toHaveLength(1);
    const rows = outbox.records();
    expect(rows.map((r) => r.type)).toEqual(['payments.charged', 'payments.refunded']);
    expect(rows.map((r) => JSON.parse(new TextDecoder().decode(r.payload as Uint8Array)).n)).toEqual([1, 1]);
  });

  it('gives a stable idempotency key per saga step, across retries', async () => {
    const keys: string[] = [];
    const saga = defineSaga({
      name: 'keys',
      context: C,
      steps: [
        C.step({
          id: 'pay',
          retry: { maxAttempts: 2, ...fast },
          act: (_c, tools) => {
            keys.push(tools.idempotencyKey(), tools.idempotencyKey('psp'));
            if (tools.attempt === 1) throw new Error('retry me');
          },
          compensate: (_c, _r, tools) => void keys.push(tools.idempotencyKey()),
        }),
        C.step({ id: 'boom', act: () => Promise.reject(new Error('x')) }),
      ],
    });
    const runner = createSagaRunner({ store: createInMemorySagaStore() });
    const err = (await runner.run(saga, ctx()).catch((e) => e)) as SagaFailedError;
    const id = err.sagaId!;
    expect(keys).toEqual([
      `${id}:pay`,
      `${id}:pay:psp`,
      `${id}:pay`,
      `${id}:pay:psp`,
      `${id}:pay:compensate`,
    ]);
  });

  it('publishing without a mediator or outbox fails the step with a configuration error', async () => {
    const E = defineEvent('x.happened').withPayload<{ a: number }>();
    const saga = defineSaga({
      name: 'nopub',
      context: C,
      steps: [C.step({ id: 'p', act: (_c, tools) => tools.publish(E.create({ a: 1 })) })],
    });
    const runner = createSagaRunner({ store: createInMemorySagaStore() });
    const err = (await runner.run(saga, ctx()).catch((e) => e)) as SagaFailedError;
    expect((err.cause as { code: string }).code).toBe('CQRS_CONFIGURATION');
    await tick();
  });

  it('the log row of a failed step holds its own error, also after retries', async () => {
    const saga = defineSaga({
      name: 'logged-failure',
      context: C,
      steps: [
        C.step({
          id: 'pay',
          retry: { maxAttempts: 2, ...fast },
          act: () => {
            throw new TimeoutError('psp', 5);
          },
        }),
      ],
    });
    const runner = createSagaRunner({ store: createInMemorySagaStore() });
    const err = (await runner.run(saga, ctx()).catch((e) => e)) as SagaFailedError;
    const [row] = await runner.history(err.sagaId!);
    expect(row).toMatchObject({ stepId: 'pay', status: 'failed', attempts: 2 });
    expect(JSON.parse(row!.error!)).toMatchObject({ name: 'TimeoutError', code: 'CQRS_TIMEOUT' });
  });
});
