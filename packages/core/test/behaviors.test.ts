import {
  AuthorizationError,
  authorization,
  CancelledError,
  correlation,
  createBehavior,
  createContextKey,
  createMediator,
  currentContext,
  defineBehavior,
  defineCommand,
  defineQuery,
  handle,
  hasRole,
  type Logger,
  logging,
  type Middleware,
  mapErrors,
  ProcessingError,
  retry,
  runWithContext,
  TimeoutError,
  timeout,
  ValidationError,
  validation,
} from '@cqrs-ts/core';
import { describe, expect, it, vi } from 'vitest';
import { z } from 'zod';

const Pay = defineCommand('billing.pay', {
  schema: z.object({ amount: z.number().positive(), currency: z.string().length(3) }),
  tags: ['billing'],
}).returns<string>();
const Ping = defineQuery('ops.ping').returns<string>();

describe('pipeline composition', () => {
  it('runs behaviors in registration order (first = outermost) around the handler', async () => {
    const trace: string[] = [];
    const tracer =
      (name: string): Middleware =>
      async (m, c, next) => {
        trace.push(`${name}>`);
        const r = await next(m, c);
        trace.push(`<${name}`);
        return r;
      };
    const mediator = createMediator({
      handlers: [
        handle(Ping, () => {
          trace.push('handler');
          return 'pong';
        }),
      ],
      behaviors: [tracer('a'), tracer('b'), tracer('c')],
    });
    expect(await mediator.query(Ping.create({}))).toBe('pong');
    expect(trace).toEqual(['a>', 'b>', 'c>', 'handler', '<c', '<b', '<a']);
  });

  it('targets behaviors by kind, type and tag', async () => {
    const hits: string[] = [];
    const mark =
      (name: string): Middleware =>
      (m, c, next) => {
        hits.push(`${name}:${m.type}`);
        return next(m, c);
      };
    const mediator = createMediator({
      handlers: [handle(Pay, () => 'ok'), handle(Ping, () => 'pong', { tags: ['ops'] })],
      unenforced: ['validation'],
      behaviors: [
        defineBehavior('commands', mark('commands'), { kinds: ['command'] }),
        defineBehavior('ping', mark('ping'), { types: ['ops.ping'] }),
        defineBehavior('billing', mark('billing'), { tags: ['billing'] }),
        defineBehavior('ops', mark('ops'), { tags: ['ops'] }),
        defineBehavior('none', mark('none'), { kinds: ['event'] }),
      ],
    });
    await mediator.send(Pay.create({ amount: 1, currency: 'EUR' }));
    await mediator.query(Ping.create({}));
    expect(hits).toEqual(['commands:billing.pay', 'billing:billing.pay', 'ping:ops.ping', 'ops:ops.ping']);
    expect(mediator.describe().map((h) => [h.messageType, h.behaviors])).toEqual([
      ['billing.pay', ['commands', 'billing']],
      ['ops.ping', ['ping', 'ops']],
    ]);
  });

  it('composes once: forHandler runs at build time, once per handler', async () => {
    const factory = vi.fn(() => ((m, c, next) => next(m, c)) as Middleware);
    const mediator = createMediator({
      handlers: [handle(Pay, () => 'ok'), handle(Ping, () => 'pong')],
      behaviors: [createBehavior('counted', factory)],
      unenforced: ['validation'],
    });
    expect(factory).toHaveBeenCalledTimes(2);
    for (let i = 0; i < 5; i++) await mediator.query(Ping.create({}));
    expect(factory).toHaveBeenCalledTimes(2);
  });

  it('lets a behavior call next more than once, re-running every inner behavior', async () => {
    let inner = 0;
    let handled = 0;
    const twice: Middleware = async (m, c, next) => {
      await next(m, c);
      return next(m, c);
    };
    const mediator = createMediator({
      handlers: [handle(Ping, () => String(++handled))],
      behaviors: [
        twice,
        (m, c, next) => {
          inner++;
          return next(m, c);
        },
      ],
    });
    expect(await mediator.query(Ping.create({}))).toBe('2');
    expect(inner).toBe(2);
  });

  it('lets behaviors short-circuit and share typed per-dispatch values', async () => {
    const Tx = createContextKey<string | undefined>(undefined, { description: 'tx' });
    const mediator = createMediator({
      handlers: [handle(Ping, (_q, ctx) => ctx.get(Tx) ?? 'no tx')],
      behaviors: [
        (m, c, next) => {
          c.set(Tx, 'tx-1');
          return next(m, c);
        },
      ],
    });
    expect(await mediator.query(Ping.create({}))).toBe('tx-1');
    const cached = createMediator({
      handlers: [handle(Ping, () => 'slow')],
      behaviors: [async () => 'cached'],
    });
    expect(await cached.query(Ping.create({}))).toBe('cached');
  });
});

describe('ambient context (built into the mediator, no behavior needed)', () => {
  const Outer = defineCommand('t.outer').returns<{ outer: unknown; inner: unknown; innerMessage: unknown }>();
  const Inner = defineQuery('t.inner').returns<unknown>();

  function build() {
    const mediator = createMediator({
      handlers: [
        handle(Outer, async () => {
          const outer = currentContext();
          const innerMessage = Inner.create({});
          const inner = await mediator.query(innerMessage);
          expect(currentContext()).toBe(outer);
          return { outer, inner, innerMessage: innerMessage.metadata };
        }),
        handle(Inner, () => currentContext()),
      ],
    });
    return mediator;
  }

  it('links nested dispatches: same correlation id, parent request id as causation id', async () => {
    const mediator = build();
    const cmd = Outer.create({}, { correlationId: 'corr-42' });
    const { outer, inner, innerMessage } = await mediator.send(cmd);
    expect(outer).toMatchObject({ requestId: cmd.metadata.requestId, correlationId: 'corr-42' });
    expect(inner).toMatchObject({ correlationId: 'corr-42', causationId: cmd.metadata.requestId });
    expect(innerMessage).toMatchObject({ correlationId: 'corr-42', causationId: cmd.metadata.requestId });
    expect(currentContext()).toBeUndefined();
  });

  it('links a message created outside but sent inside a dispatch', async () => {
    const early = Inner.create({});
    const mediator = createMediator({
      handlers: [
        handle(Outer, async () => ({
          outer: currentContext(),
          inner: await mediator.query(early),
          innerMessage: null,
        })),
        handle(Inner, () => currentContext()),
      ],
    });
    const cmd = Outer.create({}, { correlationId: 'c-9' });
    const { inner } = await mediator.send(cmd);
    expect(inner).toMatchObject({ correlationId: 'c-9', causationId: cmd.metadata.requestId });
  });

  it('restores the outer context after an error', async () => {
    const Fail = defineCommand('t.fail');
    const mediator = createMediator({
      handlers: [
        handle(Fail, () => {
          throw new Error('x');
        }),
      ],
    });
    await runWithContext({ correlationId: 'outer' }, async () => {
      const before = currentContext();
      await expect(mediator.send(Fail.create({}))).rejects.toThrow('x');
      expect(currentContext()).toBe(before);
    });
  });

  it('carries the execution context into nested dispatches', async () => {
    const Who = defineQuery('t.who').returns<unknown>();
    const Outer2 = defineCommand('t.outer2').returns<unknown>();
    const mediator = createMediator({
      handlers: [
        handle(Outer2, async () => {
          await Promise.resolve(); // after an await too
          return mediator.query(Who.create({}));
        }),
        handle(Who, (q, ctx) => ({
          execution: ctx.execution,
          tenantId: currentContext()?.tenantId,
          requestedBy: currentContext()?.requestedBy,
          message: q.metadata,
        })),
      ],
    });
    const context = { user: { id: 'u-7' }, tenantId: 'tenant-7' };
    const outer = Outer2.create({});
    expect(await mediator.send(outer, { context })).toEqual({
      execution: context,
      tenantId: 'tenant-7',
      requestedBy: 'u-7',
      message: expect.objectContaining({
        correlationId: outer.metadata.correlationId,
        causationId: outer.metadata.requestId,
        tenantId: 'tenant-7',
        requestedBy: 'u-7',
      }),
    });
  });

  it('keeps correlation() as a no-op that joins no pipeline', async () => {
    const mediator = createMediator({ handlers: [handle(Inner, () => 1)], behaviors: [correlation()] });
    expect(mediator.describe()[0]!.behaviors).toEqual([]);
    expect(await mediator.query(Inner.create({}))).toBe(1);
  });
});

describe('validation behavior', () => {
  it('rejects invalid payloads with every field error before the handler runs', async () => {
    const handler = vi.fn(() => 'paid');
    const mediator = createMediator({ handlers: [handle(Pay, handler)], behaviors: [validation()] });
    const bad = Pay.create({ amount: -5, currency: 'EURO' });
    const error = await mediator.send(bad).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ValidationError);
    expect((error as ValidationError).issues.map((i) => i.path)).toEqual([['amount'], ['currency']]);
    expect((error as ValidationError).issues.every((i) => typeof i.code === 'string')).toBe(true);
    expect(handler).not.toHaveBeenCalled();
    expect(await mediator.send(Pay.create({ amount: 5, currency: 'EUR' }))).toBe('paid');
  });

  it('runs definition and handler hooks (async too), reporting warnings without failing', async () => {
    const warnings: unknown[] = [];
    const Withdraw = defineCommand('bank.withdraw', {
      schema: z.object({ amount: z.number() }),
      validate: async (p) =>
        p.amount > 100 ? { path: ['amount'], message: 'over limit', code: 'limit' } : undefined,
    });
    const mediator = createMediator({
      handlers: [
        handle(Withdraw, () => undefined, {
          validate: (p) =>
            p.amount === 50
              ? [{ path: ['amount'], message: 'round amount', code: 'round', severity: 'warning' }]
              : [],
        }),
      ],
      behaviors: [validation({ onWarnings: (_m, w) => warnings.push(...w) })],
    });
    await expect(mediator.send(Withdraw.create({ amount: 500 }))).rejects.toMatchObject({
      issues: [{ code: 'limit' }],
    });
    await mediator.send(Withdraw.create({ amount: 50 }));
    expect(warnings).toEqual([expect.objectContaining({ code: 'round', severity: 'warning' })]);
    await expect(mediator.send(Withdraw.create({ amount: 'x' as never }))).rejects.toBeInstanceOf(
      ValidationError,
    );
  });

  it('is skipped entirely for handlers with nothing to validate', () => {
    const mediator = createMediator({ handlers: [handle(Ping, () => 'p')], behaviors: [validation()] });
    expect(mediator.describe()[0]!.behaviors).toEqual([]);
  });
});

describe('authorization behavior', () => {
  const Delete = defineCommand('admin.delete', {
    authorize: (_m, ctx) =>
      hasRole(ctx.execution, 'admin') ? true : { allowed: false, reason: 'admins only', code: 'role' },
  });

  it('applies message hooks, handler hooks and global policies', async () => {
    const handler = vi.fn();
    const mediator = createMediator({
      handlers: [
        handle(Delete, handler, { authorize: async (_m, ctx) => ctx.execution.tenantId === 't1' }),
        handle(Ping, () => 'pong'),
      ],
      behaviors: [
        authorization({
          policies: [(m, ctx) => !(m.type === 'ops.ping' && ctx.execution.properties?.blocked === true)],
        }),
      ],
    });
    const admin = { user: { id: 'a', roles: ['admin'] }, tenantId: 't1' };
    await mediator.send(Delete.create({}), { context: admin });
    expect(handler).toHaveBeenCalledTimes(1);

    const denied = await mediator
      .send(Delete.create({}), { context: { user: { id: 'b' } } })
      .catch((e: unknown) => e);
    expect(denied).toBeInstanceOf(AuthorizationError);
    expect(denied).toMatchObject({ reason: 'admins only', reasonCode: 'role', code: 'CQRS_AUTHORIZATION' });

    await expect(
      mediator.send(Delete.create({}), { context: { ...admin, tenantId: 't2' } }),
    ).rejects.toBeInstanceOf(AuthorizationError);
    await expect(
      mediator.query(Ping.create({}), { context: { properties: { blocked: true } } }),
    ).rejects.toBeInstanceOf(AuthorizationError);
    expect(await mediator.query(Ping.create({}))).toBe('pong');
    expect(handler).toHaveBeenCalledTimes(1);
  });

  it('can be left out on purpose only through unenforced; the old enabled switch is refused', async () => {
    expect(() => createMediator({ handlers: [handle(Delete, () => undefined)] })).toThrow(
      /admin\.delete \(admin\.delete handler\) declares authorization but its pipeline has no authorization\(\) behavior/,
    );
    const mediator = createMediator({
      handlers: [handle(Delete, () => undefined)],
      unenforced: ['authorization'],
    });
    await expect(mediator.send(Delete.create({}))).resolves.toBeUndefined();
    expect(() => authorization({ enabled: false } as never)).toThrow(/unenforced/);
  });

  it('treats a malformed decision as a denial', async () => {
    const Odd = defineCommand('t.odd', { authorize: () => 'yes' as never });
    const mediator = createMediator({
      handlers: [handle(Odd, () => undefined)],
      behaviors: [authorization()],
    });
    await expect(mediator.send(Odd.create({}))).rejects.toMatchObject({ reasonCode: 'invalid_decision' });
  });
});

describe('timeout behavior', () => {
  it('aborts the handler signal and fails with a TimeoutError', async () => {
    let aborted: unknown;
    const Slow = defineQuery('t.slow').returns<string>();
    const mediator = createMediator({
      handlers: [
        handle(
          Slow,
          (_q, ctx) =>
            new Promise<string>((resolve) => {
              ctx.signal.addEventListener('abort', () => {
                aborted = ctx.signal.reason;
              });
              setTimeout(() => resolve('late'), 500);
            }),
          { timeout: 20 },
        ),
      ],
      behaviors: [timeout()],
    });
    const error = await mediator.query(Slow.create({})).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TimeoutError);
    expect((error as TimeoutError).timeoutMs).toBe(20);
    expect(aborted).toBe(error);
  });

  it('uses the per-dispatch timeout and the default, and lets fast handlers through', async () => {
    const Slow = defineQuery('t.slow2').returns<string>();
    const mediator = createMediator({
      handlers: [
        handle(Slow, async (_q, ctx) => {
          // a handler slower than its timeout (the subject)
          await new Promise((r) => setTimeout(r, 40));
          return ctx.signal.aborted ? 'aborted' : 'done';
        }),
      ],
      behaviors: [timeout({ defaultMs: 1_000 })],
    });
    expect(await mediator.query(Slow.create({}))).toBe('done');
    await expect(mediator.query(Slow.create({}), { timeout: 5 })).rejects.toBeInstanceOf(TimeoutError);
  });

  it('turns a caller abort during the dispatch into a CancelledError', async () => {
    const Slow = defineQuery('t.slow3').returns<string>();
    const mediator = createMediator({
      handlers: [handle(Slow, () => new Promise<string>((r) => setTimeout(() => r('x'), 200)))],
      behaviors: [timeout()],
    });
    const controller = new AbortController();
    const pending = mediator.query(Slow.create({}), { signal: controller.signal });
    setTimeout(() => controller.abort(), 10);
    await expect(pending).rejects.toBeInstanceOf(CancelledError);
  });
});

describe('retry behavior', () => {
  it('retries with exponential backoff and jitter, running inner behaviors each time', async () => {
    let calls = 0;
    let innerRuns = 0;
    const delays: number[] = [];
    const Flaky = defineCommand('t.flaky').returns<number>();
    const mediator = createMediator({
      handlers: [
        handle(
          Flaky,
          (_c, ctx) => {
            calls++;
            if (calls < 3) throw new Error('transient');
            return ctx.attempt;
          },
          { retries: 4, backoff: { initialMs: 4, factor: 2, maxMs: 100 } },
        ),
      ],
      behaviors: [
        retry({ random: () => 0.5, onRetry: (i) => delays.push(i.delayMs) }),
        (m, c, next) => {
          innerRuns++;
          return next(m, c);
        },
      ],
    });
    expect(await mediator.send(Flaky.create({}))).toBe(3);
    expect(calls).toBe(3);
    expect(innerRuns).toBe(3);
    expect(delays).toEqual([2, 4]);
  });

  it('gives up after max attempts with the last error, and never retries filtered errors', async () => {
    let calls = 0;
    const Always = defineCommand('t.always');
    const mediator = createMediator({
      handlers: [
        handle(Always, () => {
          calls++;
          throw new Error(`fail ${calls}`);
        }),
      ],
      behaviors: [retry({ maxAttempts: 3, backoff: { initialMs: 1, jitter: 'none' } })],
    });
    await expect(mediator.send(Always.create({}))).rejects.toThrow('fail 3');
    expect(calls).toBe(3);

    let validations = 0;
    const mediator2 = createMediator({
      handlers: [
        handle(Pay, () => {
          validations++;
          throw new ValidationError('billing.pay', []);
        }),
      ],
      behaviors: [retry({ maxAttempts: 5, backoff: { initialMs: 1 } })],
      unenforced: ['validation'],
    });
    await expect(mediator2.send(Pay.create({ amount: 1, currency: 'EUR' }))).rejects.toBeInstanceOf(
      ValidationError,
    );
    expect(validations).toBe(1);

    let custom = 0;
    const mediator3 = createMediator({
      handlers: [
        handle(
          Always,
          () => {
            custom++;
            throw new Error('fatal');
          },
          { retries: 5, retryOn: (e) => (e as Error).message !== 'fatal' },
        ),
      ],
      behaviors: [retry()],
    });
    await expect(mediator3.send(Always.create({}))).rejects.toThrow('fatal');
    expect(custom).toBe(1);
  });

  it('bounds each attempt when combined with timeout, and stops waiting on abort', async () => {
    let calls = 0;
    const Hang = defineQuery('t.hang').returns<string>();
    const mediator = createMediator({
      handlers: [
        handle(
          Hang,
          () => {
            calls++;
            return calls < 3 ? new Promise<string>(() => {}) : 'third time';
          },
          { timeout: 15, retries: 3 },
        ),
      ],
      behaviors: [retry({ backoff: { initialMs: 1 } }), timeout()],
    });
    expect(await mediator.query(Hang.create({}))).toBe('third time');

    const controller = new AbortController();
    const Fails = defineCommand('t.fails');
    const slowRetry = createMediator({
      handlers: [
        handle(
          Fails,
          () => {
            throw new Error('x');
          },
          { retries: 10, backoff: { initialMs: 10_000, jitter: 'none' } },
        ),
      ],
      behaviors: [retry()],
    });
    const pending = slowRetry.send(Fails.create({}), { signal: controller.signal });
    setTimeout(() => controller.abort(), 20);
    await expect(pending).rejects.toBeInstanceOf(CancelledError);
  });
});

describe('logging behavior', () => {
  function memoryLogger(levels = ['debug', 'info', 'warn', 'error']) {
    const lines: { level: string; obj: Record<string, unknown>; msg: string | undefined }[] = [];
    const at = (level: string) => (obj: Record<string, unknown>, msg?: string) =>
      lines.push({ level, obj, msg });
    const logger: Logger = {
      debug: at('debug'),
      info: at('info'),
      warn: at('warn'),
      error: at('error'),
      isLevelEnabled: (l) => levels.includes(l),
    };
    return { logger, lines };
  }

  it('writes request and correlation ids on every line, at levels by outcome', async () => {
    const { logger, lines } = memoryLogger();
    const Fail = defineCommand('t.fail-log');
    const mediator = createMediator({
      handlers: [
        handle(Ping, () => 'pong'),
        handle(Fail, () => {
          throw new Error('db down');
        }),
        handle(Pay, () => 'ok'),
      ],
      behaviors: [logging({ logger }), validation()],
    });
    const ping = Ping.create({}, { correlationId: 'c-1' });
    await mediator.query(ping);
    await mediator.send(Fail.create({}, { correlationId: 'c-2' })).catch(() => {});
    await mediator.send(Pay.create({ amount: -1, currency: 'EUR' })).catch(() => {});
    expect(lines.map((l) => l.level)).toEqual(['debug', 'error', 'warn']);
    expect(lines[0]!.obj).toMatchObject({
      messageType: 'ops.ping',
      requestId: ping.metadata.requestId,
      correlationId: 'c-1',
      handler: expect.any(String),
    });
    expect(typeof lines[0]!.obj.durationMs).toBe('number');
    expect(lines[1]!.obj).toMatchObject({ correlationId: 'c-2', err: expect.any(Error) });
    expect(lines[2]!.obj.err).toBeInstanceOf(ValidationError);
  });

  it('redacts secrets when payloads are logged, and costs nothing when disabled', async () => {
    const { logger, lines } = memoryLogger(['info']);
    const Login = defineCommand('auth.login').withPayload<{
      user: string;
      password: string;
      nested: { apiKey: string };
    }>();
    const mediator = createMediator({
      handlers: [handle(Login, () => undefined)],
      behaviors: [logging({ logger, level: 'info', includePayload: true })],
    });
    await mediator.send(Login.create({ user: 'ada', password: 'hunter2', nested: { apiKey: 'k' } }));
    expect(lines[0]!.obj.payload).toEqual({
      user: 'ada',
      password: '[redacted]',
      nested: { apiKey: '[redacted]' },
    });
    const silent = memoryLogger([]);
    const quiet = createMediator({
      handlers: [handle(Ping, () => 'p')],
      behaviors: [logging({ logger: silent.logger })],
    });
    await quiet.query(Ping.create({}));
    expect(silent.lines).toEqual([]);
  });
});

describe('error mapping', () => {
  it('wraps unexpected errors in ProcessingError with the cause, passing cqrs errors through', async () => {
    const cause = new Error('disk full');
    const Fail = defineCommand('t.map');
    const mediator = createMediator({
      handlers: [
        handle(Fail, () => {
          throw cause;
        }),
        handle(Pay, () => 'ok'),
      ],
      behaviors: [mapErrors(), validation()],
    });
    const error = await mediator.send(Fail.create({})).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ProcessingError);
    expect((error as ProcessingError).cause).toBe(cause);
    await expect(mediator.send(Pay.create({ amount: -1, currency: 'EUR' }))).rejects.toBeInstanceOf(
      ValidationError,
    );
  });
});
