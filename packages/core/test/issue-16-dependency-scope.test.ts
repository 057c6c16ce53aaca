import {
  ConfigurationError,
  createMediator,
  type DependencyContainer,
  type DependencyScope,
  type DependencyToken,
  type DispatchContext,
  defineBehavior,
  defineCommand,
  defineEvent,
  defineQuery,
  defineStreamQuery,
  EventDispatchError,
  handle,
  handleStream,
  on,
  type ScopeInit,
} from '@cqrs-ts/core';
import { describe, expect, it } from 'vitest';

/** Issue 16, DI: one dependency scope per top-level dispatch, shared by nested dispatches, disposed at the end. */

/** A small container: each scope builds a class once (scoped lifetime) and records what happens to it. */
class TestScope implements DependencyScope {
  static next = 1;
  readonly id = TestScope.next++;
  readonly instances = new Map<DependencyToken, unknown>();
  readonly init: ScopeInit | undefined;
  readonly async: boolean;
  disposed = 0;
  /** Set while a dispose is running, to show the dispatch waits for it. */
  disposing = false;
  constructor(init?: ScopeInit, async = false) {
    this.init = init;
    this.async = async;
  }
  resolve<TValue>(token: DependencyToken<TValue>): TValue | Promise<TValue> {
    if (typeof token !== 'function') throw new Error(`unknown token ${String(token)}`);
    let instance = this.instances.get(token) as TValue | undefined;
    if (instance === undefined) {
      instance = new (token as unknown as new (scope: TestScope) => TValue)(this);
      this.instances.set(token, instance);
    }
    return this.async ? Promise.resolve(instance) : instance;
  }
  async dispose(): Promise<void> {
    this.disposing = true;
    await new Promise((resolve) => setImmediate(resolve));
    this.disposing = false;
    this.disposed++;
  }
}

function testContainer(async = false): DependencyContainer & { readonly scopes: TestScope[] } {
  const scopes: TestScope[] = [];
  return {
    scopes,
    createScope(init) {
      const scope = new TestScope(init, async);
      scopes.push(scope);
      return scope;
    },
  };
}

const Place = defineCommand('di.place').withPayload<{ n: number }>().returns<number[]>();
const Count = defineQuery('di.count').withPayload<{ n: number }>().returns<number>();
const Placed = defineEvent('di.placed').withPayload<{ n: number }>();
const Tail = defineStreamQuery('di.tail').withPayload<{ n: number }>().yields<number>();

/** Scope ids seen by each handler, in call order. */
type Seen = { where: string; scope: number | undefined }[];
const idOf = (context: DispatchContext) => (context.scope as TestScope | undefined)?.id;

describe('dependency scope per top-level dispatch', () => {
  it('is opened once per top-level send, shared by nested dispatches and awaited events, disposed before the send resolves', async () => {
    const container = testContainer();
    const seen: Seen = [];
    const mediator = createMediator({
      container,
      handlers: [
        handle(Place, async (cmd, ctx) => {
          seen.push({ where: 'place', scope: idOf(ctx) });
          const count = await mediator.query(Count.create({ n: cmd.payload.n }));
          await mediator.publish(Placed.create({ n: count }));
          ctx.emit(Placed, { n: count + 1 });
          return [count];
        }),
        handle(Count, (q, ctx) => {
          seen.push({ where: 'count', scope: idOf(ctx) });
          return q.payload.n;
        }),
        on(Placed, (e, ctx) => void seen.push({ where: `placed ${e.payload.n}`, scope: idOf(ctx) })),
      ],
    });
    const first = await mediator.send(Place.create({ n: 1 }));
    expect(first).toEqual([1]);
    expect(container.scopes).toHaveLength(1);
    const [scope] = container.scopes;
    expect(seen).toEqual([
      { where: 'place', scope: scope!.id },
      { where: 'count', scope: scope!.id },
      { where: 'placed 1', scope: scope!.id },
      { where: 'placed 2', scope: scope!.id },
    ]);
    // disposed once, and the send resolved only after the dispose finished
    expect(scope!.disposed).toBe(1);
    expect(scope!.disposing).toBe(false);
    expect(scope!.init?.message.type).toBe('di.place');

    await mediator.send(Place.create({ n: 2 }));
    expect(container.scopes).toHaveLength(2);
    expect(container.scopes[1]!.id).not.toBe(scope!.id);
  });

  it('gives concurrent top-level dispatches scopes of their own, and tells the container the execution context', async () => {
    const container = testContainer();
    const seen: Seen = [];
    const mediator = createMediator({
      container,
      handlers: [
        handle(Count, async (q, ctx) => {
          await new Promise((resolve) => setImmediate(resolve));
          seen.push({ where: `count ${q.payload.n}`, scope: idOf(ctx) });
          return q.payload.n;
        }),
      ],
    });
    await Promise.all([
      mediator.query(Count.create({ n: 1 }), { context: { tenantId: 't1' } }),
      mediator.query(Count.create({ n: 2 }), { context: { tenantId: 't2' } }),
    ]);
    expect(new Set(seen.map((s) => s.scope)).size).toBe(2);
    expect(container.scopes.map((s) => s.init?.execution.tenantId)).toEqual(['t1', 't2']);
    expect(container.scopes.map((s) => s.disposed)).toEqual([1, 1]);
  });

  it('resolves class handlers from the scope (also asynchronously), one instance per scope', async () => {
    for (const async of [false, true]) {
      const container = testContainer(async);
      const built: TestScope[] = [];
      class CountHandler {
        readonly scope: TestScope;
        constructor(scope: TestScope) {
          this.scope = scope;
          built.push(scope);
        }
        handle(q: ReturnType<typeof Count.create>) {
          return q.payload.n * 10;
        }
      }
      const mediator = createMediator({
        container,
        handlers: [
          handle(Count, CountHandler),
          handle(Place, async () => [
            await mediator.query(Count.create({ n: 1 })),
            await mediator.query(Count.create({ n: 2 })),
          ]),
        ],
      });
      expect(await mediator.send(Place.create({ n: 0 }))).toEqual([10, 20]);
      expect(await mediator.query(Count.create({ n: 3 }))).toBe(30);
      // the two nested queries shared the send's scope, so its one CountHandler; the top-level query had its own
      expect(built.map((s) => s.id)).toEqual(container.scopes.map((s) => s.id));
      expect(container.scopes).toHaveLength(2);
    }
  });

  it('lets behaviors resolve their dependencies from the scope', async () => {
    const container = testContainer();
    class AuditLog {
      readonly lines: string[] = [];
    }
    const logs: AuditLog[] = [];
    const audit = defineBehavior('audit', async (message, ctx, next) => {
      const log = (await ctx.scope!.resolve(AuditLog)) as AuditLog;
      log.lines.push(message.type);
      logs.push(log);
      return next(message, ctx);
    });
    const mediator = createMediator({
      container,
      behaviors: [audit],
      handlers: [
        handle(Count, (q) => q.payload.n),
        handle(Place, async () => [await mediator.query(Count.create({ n: 1 }))]),
      ],
    });
    await mediator.send(Place.create({ n: 0 }));
    expect(logs).toHaveLength(2);
    expect(logs[0]).toBe(logs[1]);
    expect(logs[0]!.lines).toEqual(['di.place', 'di.count']);
  });

  /** A mediator whose Place handler queries Count; both record the scope they ran in. */
  function nestedMediator(container: DependencyContainer | undefined, seen: Seen) {
    const mediator = createMediator({
      ...(container === undefined ? {} : { container }),
      handlers: [
        handle(Count, (q, ctx) => {
          seen.push({ where: 'count', scope: idOf(ctx) });
          return q.payload.n;
        }),
        handle(Place, async (_c, ctx) => {
          seen.push({ where: 'place', scope: idOf(ctx) });
          return [await mediator.query(Count.create({ n: 1 }))];
        }),
      ],
    });
    return mediator;
  }

  it('adopts a scope given in the dispatch options (an HTTP request scope) and leaves its disposal to the owner', async () => {
    const container = testContainer();
    const seen: Seen = [];
    const mediator = nestedMediator(container, seen);
    const request = new TestScope();
    await mediator.send(Place.create({ n: 0 }), { scope: request });
    expect(seen).toEqual([
      { where: 'place', scope: request.id },
      { where: 'count', scope: request.id },
    ]);
    expect(container.scopes).toHaveLength(0);
    expect(request.disposed).toBe(0);
  });

  it('works without a container when a scope is given, and leaves context.scope undefined otherwise', async () => {
    const seen: Seen = [];
    const mediator = nestedMediator(undefined, seen);
    const request = new TestScope();
    await mediator.send(Place.create({ n: 0 }), { scope: request });
    await mediator.query(Count.create({ n: 2 }));
    expect(seen).toEqual([
      { where: 'place', scope: request.id },
      { where: 'count', scope: request.id },
      { where: 'count', scope: undefined },
    ]);
  });

  it('disposes the scope when the handler fails, and keeps the failure', async () => {
    const container = testContainer();
    const mediator = createMediator({
      container,
      handlers: [
        handle(Count, () => {
          throw new Error('boom');
        }),
      ],
    });
    await expect(mediator.query(Count.create({ n: 1 }))).rejects.toThrow('boom');
    expect(container.scopes[0]!.disposed).toBe(1);
  });

  it('reports a failing dispose as a warning and keeps the result', async () => {
    const warnings: string[] = [];
    const onWarning = (w: Error) => warnings.push(w.message);
    process.on('warning', onWarning);
    try {
      const mediator = createMediator({
        container: {
          createScope: () => ({
            resolve: () => undefined as never,
            dispose: () => Promise.reject(new Error('pool closed')),
          }),
        },
        handlers: [handle(Count, (q) => q.payload.n)],
      });
      expect(await mediator.query(Count.create({ n: 7 }))).toBe(7);
      await new Promise((resolve) => setImmediate(resolve));
      expect(warnings.some((w) => w.includes('pool closed'))).toBe(true);
    } finally {
      process.off('warning', onWarning);
    }
  });

  it('gives fire-and-forget event handlers a scope of their own, disposed when they end', async () => {
    const container = testContainer();
    const seen: Seen = [];
    const mediator = createMediator({
      container,
      events: { strategy: 'fire-and-forget' },
      handlers: [
        handle(Count, (q, ctx) => {
          seen.push({ where: 'count', scope: idOf(ctx) });
          ctx.emit(Placed, { n: q.payload.n });
          return q.payload.n;
        }),
        on(Placed, (_e, ctx) => void seen.push({ where: 'placed', scope: idOf(ctx) })),
      ],
    });
    await mediator.query(Count.create({ n: 1 }));
    await mediator.whenIdle();
    expect(container.scopes).toHaveLength(2);
    expect(seen).toEqual([
      { where: 'count', scope: container.scopes[0]!.id },
      { where: 'placed', scope: container.scopes[1]!.id },
    ]);
    expect(container.scopes.map((s) => s.disposed)).toEqual([1, 1]);
  });

  it('opens one scope for a top-level publish, shared by its handlers', async () => {
    const container = testContainer();
    const seen: Seen = [];
    const mediator = createMediator({
      container,
      handlers: [
        on(Placed, (_e, ctx) => void seen.push({ where: 'a', scope: idOf(ctx) })),
        on(Placed, (_e, ctx) => void seen.push({ where: 'b', scope: idOf(ctx) })),
      ],
    });
    await mediator.publish(Placed.create({ n: 1 }));
    expect(container.scopes).toHaveLength(1);
    expect(seen.map((s) => s.scope)).toEqual([container.scopes[0]!.id, container.scopes[0]!.id]);
    expect(container.scopes[0]!.disposed).toBe(1);
  });

  it('keeps a stream scope open while it yields, and disposes it when the consumer stops', async () => {
    const container = testContainer();
    const mediator = createMediator({
      container,
      handlers: [
        handleStream(Tail, async function* (q, ctx) {
          for (let i = 0; i < q.payload.n; i++) yield idOf(ctx)!;
        }),
      ],
    });
    const ids: number[] = [];
    for await (const id of mediator.stream(Tail.create({ n: 5 }))) {
      ids.push(id);
      expect(container.scopes[0]!.disposed).toBe(0);
      if (ids.length === 2) break;
    }
    expect(ids).toEqual([container.scopes[0]!.id, container.scopes[0]!.id]);
    expect(container.scopes[0]!.disposed).toBe(1);
  });
});

describe('dependency scope configuration', () => {
  it('refuses a container without createScope, and a resolver together with a container', () => {
    expect(() => createMediator({ container: {} as never })).toThrow(ConfigurationError);
    expect(() =>
      createMediator({ container: testContainer(), resolver: { resolve: () => undefined as never } }),
    ).toThrow(/resolver or a container, not both/);
  });

  it('turns a container that cannot open a scope into a failed dispatch, never a throw from send or publish', async () => {
    const down = new Error('container is closed');
    const seen: string[] = [];
    const mediator = createMediator({
      container: {
        createScope: () => {
          throw down;
        },
      },
      onError: (_error, info) => void seen.push(info.handler),
      handlers: [
        handle(Count, (q) => q.payload.n),
        on(Placed, () => {}),
        handleStream(Tail, async function* () {
          yield 1;
        }),
      ],
    });
    let sent: Promise<unknown> | undefined;
    expect(() => {
      sent = mediator.query(Count.create({ n: 1 }));
    }).not.toThrow();
    await expect(sent).rejects.toBe(down);
    const published = await mediator.publish(Placed.create({ n: 1 })).catch((e: unknown) => e);
    expect(published).toBeInstanceOf(EventDispatchError);
    expect((published as EventDispatchError).failures[0]!.error).toBe(down);
    expect(seen).toEqual(['container']);
    await expect(mediator.stream(Tail.create({ n: 1 })).next()).rejects.toBe(down);
  });

  it('refuses a dispatch scope without resolve(), and a container whose createScope returns none', async () => {
    const mediator = createMediator({ handlers: [handle(Count, (q) => q.payload.n)] });
    await expect(mediator.query(Count.create({ n: 1 }), { scope: {} as never })).rejects.toThrow(
      ConfigurationError,
    );
    const broken = createMediator({
      container: { createScope: () => undefined as never },
      handlers: [handle(Count, (q) => q.payload.n)],
    });
    await expect(broken.query(Count.create({ n: 1 }))).rejects.toThrow(/createScope\(\) returned no scope/);
  });
});
