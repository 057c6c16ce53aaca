/**
 * Issue 10, "Cost of the pipeline": the timeout behavior shares one timer per budget and makes a handler's
 * signal only when the handler reads it. These tests hold it to what the per-dispatch timer did.
 */
import {
  CancelledError,
  createMediator,
  defineQuery,
  handle,
  type Middleware,
  retry,
  TimeoutError,
  timeout,
} from '@cqrs-ts/core';
import { describe, expect, it } from 'vitest';

const Wait = defineQuery('t.wait').withPayload<{ ms: number }>().returns<string>();
const never = () => new Promise<string>(() => {});

describe('timeout behavior with shared deadlines', () => {
  it('never cuts a budget short, also for dispatches that join a wheel late', async () => {
    const mediator = createMediator({
      handlers: [handle(Wait, never, { timeout: 40 })],
      behaviors: [timeout()],
    });
    const started: number[] = [];
    const failed: Promise<number>[] = [];
    for (let i = 0; i < 5; i++) {
      started.push(performance.now());
      failed.push(
        mediator.query(Wait.create({ ms: 0 })).then(
          () => Number.NaN,
          (e: unknown) => {
            expect(e).toBeInstanceOf(TimeoutError);
            return performance.now();
          },
        ),
      );
      // dispatches started at different times (the subject): each keeps its own deadline
      await new Promise((r) => setTimeout(r, 7));
    }
    const ended = await Promise.all(failed);
    for (const [i, at] of ended.entries()) expect(at - started[i]!).toBeGreaterThanOrEqual(39);
  });

  it('keeps the deadline of each dispatch when the event loop is late (a busy process)', async () => {
    const mediator = createMediator({
      handlers: [handle(Wait, (q) => new Promise<string>((r) => setTimeout(() => r('done'), q.payload.ms)))],
      behaviors: [timeout()],
    });
    const pending = mediator.query(Wait.create({ ms: 40 }), { timeout: 5 });
    const blockedUntil = performance.now() + 60;
    while (performance.now() < blockedUntil) {
      // a busy event loop: every timer fires late, the handler's 40 ms one right after the 5 ms budget's
    }
    await expect(pending).rejects.toMatchObject({ code: 'CQRS_TIMEOUT', timeoutMs: 5 });
  });

  it('aborts the signal a handler reads late, with the TimeoutError the caller gets', async () => {
    let reason: unknown;
    const mediator = createMediator({
      handlers: [
        handle(
          Wait,
          async (_q, ctx) => {
            // a handler that awaits before reading the signal (the subject)
            await new Promise((r) => setTimeout(r, 5));
            const signal = ctx.signal; // first read after an await
            await new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve()));
            reason = signal.reason;
            return 'late';
          },
          { timeout: 20 },
        ),
      ],
      behaviors: [timeout()],
    });
    const error = await mediator.query(Wait.create({ ms: 0 })).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TimeoutError);
    await new Promise((r) => setImmediate(r));
    expect(reason).toBe(error);
  });

  it('gives each retry attempt its own budget, and a fresh signal', async () => {
    const signals: AbortSignal[] = [];
    let calls = 0;
    const mediator = createMediator({
      handlers: [
        handle(
          Wait,
          (_q, ctx) => {
            signals.push(ctx.signal);
            return ++calls < 3 ? never() : 'third';
          },
          { timeout: 10, retries: 2, backoff: { initialMs: 0 } },
        ),
      ],
      behaviors: [retry(), timeout()],
    });
    expect(await mediator.query(Wait.create({ ms: 0 }))).toBe('third');
    expect(signals.map((s) => s.aborted)).toEqual([true, true, false]);
    expect(new Set(signals).size).toBe(3);
  });

  it('follows a caller signal and nested budgets on the general path', async () => {
    const inner: Middleware = (m, c, next) => next(m, c);
    const mediator = createMediator({
      handlers: [handle(Wait, never, { timeout: 1000 })],
      behaviors: [timeout({ defaultMs: 1000 }), inner, timeout()],
    });
    const controller = new AbortController();
    const pending = mediator.query(Wait.create({ ms: 0 }), { signal: controller.signal });
    controller.abort();
    await expect(pending).rejects.toBeInstanceOf(CancelledError);
    await expect(mediator.query(Wait.create({ ms: 0 }), { timeout: 15 })).rejects.toMatchObject({
      code: 'CQRS_TIMEOUT',
      timeoutMs: 15,
    });
  });

  it('lets fast handlers through with their result', async () => {
    const mediator = createMediator({
      handlers: [handle(Wait, async (q) => `waited ${q.payload.ms}`, { timeout: 5 })],
      behaviors: [timeout()],
    });
    const results = await Promise.all(
      Array.from({ length: 200 }, (_, i) => mediator.query(Wait.create({ ms: i }))),
    );
    expect(results[199]).toBe('waited 199');
  });

  it('keeps a plain value a JavaScript middleware returns inside retry() and timeout()', async () => {
    // typed as a promise, but a middleware written in JavaScript may return the value itself
    const plain = (() => 'short-circuited') as unknown as Middleware;
    const cases = [
      { behaviors: [timeout(), plain], options: { timeout: 1000 } },
      { behaviors: [retry(), plain], options: { retries: 1 } },
      { behaviors: [retry(), timeout(), plain], options: { timeout: 1000, retries: 1 } },
    ];
    for (const { behaviors, options } of cases) {
      const mediator = createMediator({ handlers: [handle(Wait, never, options)], behaviors });
      await expect(mediator.query(Wait.create({ ms: 0 }))).resolves.toBe('short-circuited');
    }
  });

  it('retries an attempt that throws before it returns a promise, then one that rejects', async () => {
    let calls = 0;
    const flaky: Middleware = (m, c, next) => {
      calls++;
      if (calls === 1) throw new Error('thrown at once');
      if (calls === 2) return Promise.reject(new Error('rejected'));
      return next(m, c);
    };
    const mediator = createMediator({
      handlers: [handle(Wait, async () => 'third', { retries: 2, backoff: { initialMs: 0 } })],
      behaviors: [retry(), flaky],
    });
    expect(await mediator.query(Wait.create({ ms: 0 }))).toBe('third');
    expect(calls).toBe(3);
  });
});
