/**
 * Issue 10, "Policies that are declared are enforced": a policy a handler or definition declares is enforced by
 * its pipeline or refused when the mediator is built; authorization fails closed; the ambient context reaches
 * nested dispatches without any behavior.
 */
import {
  AuthorizationError,
  authorization,
  type Behavior,
  ConfigurationError,
  createBehavior,
  createMediator,
  currentContext,
  defineCommand,
  defineEvent,
  defineQuery,
  defineStreamQuery,
  handle,
  handleStream,
  on,
  type Policy,
  retry,
  runWithContext,
  targetBehavior,
  timeout,
  UnenforcedPolicyError,
  validation,
} from '@cqrs-ts/core';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';

const WithSchema = defineCommand('t.with-schema', { schema: z.object({ n: z.number() }) });
const WithValidate = defineCommand('t.with-validate', { validate: () => undefined });
const Guarded = defineCommand('t.guarded', { authorize: () => true });
const Plain = defineCommand('t.plain');
const Happened = defineEvent('t.happened', { schema: z.object({ n: z.number() }) });

function refusal(build: () => unknown): UnenforcedPolicyError {
  let error: unknown;
  try {
    build();
  } catch (e) {
    error = e;
  }
  expect(error).toBeInstanceOf(UnenforcedPolicyError);
  expect(error).toBeInstanceOf(ConfigurationError);
  expect(error).toMatchObject({ code: 'CQRS_CONFIGURATION' });
  return error as UnenforcedPolicyError;
}

describe('declared policies are enforced or refused at createMediator', () => {
  const declaring = [
    handle(WithSchema, () => undefined),
    handle(WithValidate, () => undefined),
    handle(Guarded, () => undefined),
    handle(Plain, () => undefined, {
      name: 'plainHandler',
      timeout: 1000,
      retries: 2,
      circuit: 'payments-api',
      validate: () => true,
      authorize: () => true,
    }),
    on(Happened, function project() {}),
  ];

  it('names each message, handler and missing behavior', () => {
    const error = refusal(() => createMediator({ handlers: declaring }));
    expect(error.unenforced).toEqual([
      { messageType: 't.with-schema', handler: 't.with-schema handler', policy: 'validation' },
      { messageType: 't.with-validate', handler: 't.with-validate handler', policy: 'validation' },
      { messageType: 't.guarded', handler: 't.guarded handler', policy: 'authorization' },
      { messageType: 't.plain', handler: 'plainHandler', policy: 'validation' },
      { messageType: 't.plain', handler: 'plainHandler', policy: 'authorization' },
      { messageType: 't.plain', handler: 'plainHandler', policy: 'timeout' },
      { messageType: 't.plain', handler: 'plainHandler', policy: 'retry' },
      { messageType: 't.plain', handler: 'plainHandler', policy: 'circuit' },
      { messageType: 't.happened', handler: 'project', policy: 'validation' },
    ]);
    expect(error.message).toContain(
      't.plain (plainHandler) declares timeout but its pipeline has no timeout() behavior',
    );
    expect(error.message).toContain('circuitBreaker() of @cqrs-ts/resilience');
    expect(error.message).toContain('unenforced');
  });

  it('builds once every policy has its behavior', () => {
    const circuit: Behavior = {
      name: 'my-breaker',
      enforces: ['circuit'],
      forHandler: (h) => (h.options.circuit === undefined ? undefined : (m, c, next) => next(m, c)),
    };
    const mediator = createMediator({
      handlers: declaring,
      behaviors: [validation(), authorization(), retry(), timeout(), circuit],
    });
    expect(mediator.describe().find((h) => h.handler === 'plainHandler')?.behaviors).toEqual([
      'validation',
      'authorization',
      'retry',
      'timeout',
      'my-breaker',
    ]);
  });

  it('lets each policy be left unenforced on purpose, one at a time', () => {
    const all: Policy[] = ['validation', 'authorization', 'timeout', 'retry', 'circuit'];
    for (const left of all) {
      const others = all.filter((p) => p !== left);
      const error = refusal(() => createMediator({ handlers: declaring, unenforced: others }));
      expect(new Set(error.unenforced.map((u) => u.policy))).toEqual(new Set([left]));
    }
    expect(createMediator({ handlers: declaring, unenforced: all }).has('t.plain')).toBe(true);
  });

  it('counts a behavior only for the handlers it joins', () => {
    const onlyEvents = targetBehavior(validation(), { kinds: ['event'] });
    const error = refusal(() =>
      createMediator({
        handlers: [handle(WithSchema, () => undefined), on(Happened, () => {})],
        behaviors: [onlyEvents],
      }),
    );
    expect(error.unenforced).toEqual([
      { messageType: 't.with-schema', handler: 't.with-schema handler', policy: 'validation' },
    ]);
    // A plain named behavior does not enforce anything, whatever its name.
    const impostor = createBehavior('validation', () => (m, c, next) => next(m, c));
    refusal(() => createMediator({ handlers: [handle(WithSchema, () => undefined)], behaviors: [impostor] }));
  });

  it('refuses malformed unenforced lists and enforces declarations', () => {
    expect(() => createMediator({ unenforced: ['validaton' as Policy] })).toThrow(
      /unenforced lists "validaton", which is not a policy; use validation, authorization, timeout, retry, circuit/,
    );
    expect(() => createMediator({ unenforced: 'validation' as never })).toThrow(
      /unenforced must be an array/,
    );
    expect(() =>
      createMediator({
        behaviors: [{ name: 'x', enforces: ['everything'], forHandler: () => undefined } as never],
      }),
    ).toThrow(/enforces must list policies/);
  });

  it('refuses a dispatch timeout that no timeout behavior enforces, unless timeout is unenforced', async () => {
    const Q = defineQuery('t.q').returns<string>();
    const bare = createMediator({ handlers: [handle(Q, () => 'ok')] });
    await expect(bare.query(Q.create({}), { timeout: 50 })).rejects.toThrow(
      /t\.q: the dispatch sets a timeout, but the pipeline of t\.q handler has no timeout\(\) behavior/,
    );
    await expect(bare.query(Q.create({}), { timeout: 50 })).rejects.toBeInstanceOf(ConfigurationError);
    const lenient = createMediator({ handlers: [handle(Q, () => 'ok')], unenforced: ['timeout'] });
    expect(await lenient.query(Q.create({}), { timeout: 50 })).toBe('ok');
    const timed = createMediator({ handlers: [handle(Q, () => 'ok')], behaviors: [timeout()] });
    expect(await timed.query(Q.create({}), { timeout: 50 })).toBe('ok');
    const E = defineEvent('t.e');
    const events = createMediator({ handlers: [on(E, () => {})] });
    await expect(events.publish(E.create({}), { timeout: 50 })).rejects.toBeInstanceOf(ConfigurationError);
  });
});

describe('authorization fails closed', () => {
  const run = async (decision: unknown) => {
    const C = defineCommand('t.authz', { authorize: () => decision as never }).returns<string>();
    const mediator = createMediator({ handlers: [handle(C, () => 'done')], behaviors: [authorization()] });
    return mediator.send(C.create({})).catch((e: unknown) => e);
  };

  it('denies a hook that returns nothing; only an explicit allow allows', async () => {
    for (const nothing of [undefined, null]) {
      const error = await run(nothing);
      expect(error).toBeInstanceOf(AuthorizationError);
      expect(error).toMatchObject({ reasonCode: 'no_decision' });
      expect((error as Error).message).toMatch(
        /returned no decision \(return true, or \{ allowed: true \}, to allow\)/,
      );
    }
    expect(await run(true)).toBe('done');
    expect(await run({ allowed: true })).toBe('done');
    expect(await run(false)).toBeInstanceOf(AuthorizationError);
    expect(await run({ allowed: false, reason: 'no', code: 'c' })).toMatchObject({
      reason: 'no',
      reasonCode: 'c',
    });
    for (const odd of [1, 'yes', {}, { allowed: 'true' }, []]) {
      expect(await run(odd)).toMatchObject({ reasonCode: 'invalid_decision' });
    }
  });

  it('denies a hook that forgets to return, also in handler options and global policies', async () => {
    const C = defineCommand('t.forgot').returns<string>();
    const forgetful = createMediator({
      // @ts-expect-error a hook must return a decision
      handlers: [handle(C, () => 'done', { authorize: () => {} })],
      behaviors: [authorization()],
    });
    await expect(forgetful.send(C.create({}))).rejects.toMatchObject({ reasonCode: 'no_decision' });
    const policy = createMediator({
      handlers: [handle(C, () => 'done')],
      // @ts-expect-error a policy must return a decision
      behaviors: [authorization({ policies: [async () => {}] })],
    });
    await expect(policy.send(C.create({}))).rejects.toMatchObject({ reasonCode: 'no_decision' });
  });

  it('refuses malformed options', () => {
    expect(() => authorization({ policies: 'admin' as never })).toThrow(
      /policies must be a list of functions/,
    );
    expect(() => authorization({ policies: [42 as never] })).toThrow(ConfigurationError);
  });
});

describe('the ambient context reaches nested dispatches by default', () => {
  it('gives nested queries the user, the tenant and the causation, without correlation()', async () => {
    const Inner = defineQuery('t.inner').returns<unknown>();
    const Outer = defineCommand('t.outer').returns<unknown>();
    const mediator = createMediator({
      handlers: [
        handle(Outer, async () => {
          await new Promise((r) => setImmediate(r));
          return mediator.query(Inner.create({}));
        }),
        handle(Inner, (q, ctx) => ({
          user: ctx.execution.user?.id,
          tenant: currentContext()?.tenantId,
          q: q.metadata,
        })),
      ],
    });
    const outer = Outer.create({}, { correlationId: 'corr-1' });
    expect(await mediator.send(outer, { context: { user: { id: 'u-1' }, tenantId: 'acme' } })).toMatchObject({
      user: 'u-1',
      tenant: 'acme',
      q: {
        correlationId: 'corr-1',
        causationId: outer.metadata.requestId,
        tenantId: 'acme',
        requestedBy: 'u-1',
      },
    });
  });

  it('keeps concurrent dispatches apart and gives the caller its own context back at once', async () => {
    const Echo = defineQuery('t.echo').withPayload<{ n: number }>().returns<unknown>();
    const mediator = createMediator({
      handlers: [
        handle(Echo, async (q) => {
          // staggered ends (the subject): each dispatch must keep its own context across the await
          await new Promise((r) => setTimeout(r, 3 - q.payload.n));
          return currentContext()?.requestId === q.metadata.requestId;
        }),
      ],
    });
    await runWithContext({ correlationId: 'caller' }, async () => {
      const caller = currentContext();
      const pending = [1, 2, 3].map((n) => mediator.query(Echo.create({ n })));
      expect(currentContext()).toBe(caller); // right after the synchronous part of each send
      expect(await Promise.all(pending)).toEqual([true, true, true]);
      expect(currentContext()).toBe(caller);
    });
    expect(currentContext()).toBeUndefined();
  });

  it('links what event handlers and stream steps create to the message they handle', async () => {
    const Follow = defineEvent('t.follow');
    const Tail = defineStreamQuery('t.tail').yields<string | undefined>();
    const seen: unknown[] = [];
    const mediator = createMediator({
      handlers: [
        on(Happened, (e) => {
          seen.push(Follow.create({}).metadata.causationId === e.metadata.requestId);
        }),
        handleStream(Tail, async function* () {
          yield currentContext()?.requestId;
          await new Promise((r) => setImmediate(r));
          yield Follow.create({}).metadata.causationId;
        }),
      ],
      behaviors: [validation()],
    });
    await mediator.publish(Happened.create({ n: 1 }));
    expect(seen).toEqual([true]);
    const tail = Tail.create({});
    const items: unknown[] = [];
    for await (const item of mediator.stream(tail)) items.push(item);
    expect(items).toEqual([tail.metadata.requestId, tail.metadata.requestId]);
  });
});
