import { awilixContainer, awilixScope, awilixScopeOf, registerHandlers } from '@cqrs-ts/awilix';
import {
  ConfigurationError,
  createMediator,
  type DispatchContext,
  defineBehavior,
  defineCommand,
  defineEvent,
  defineQuery,
  handle,
  type InferMessage,
  on,
} from '@cqrs-ts/core';
import { asClass, asValue, createContainer, InjectionMode } from 'awilix';
import { describe, expect, it } from 'vitest';

const Place = defineCommand('aw.place').withPayload<{ sku: string }>().returns<string[]>();
const Stock = defineQuery('aw.stock').withPayload<{ sku: string }>().returns<number>();
const Placed = defineEvent('aw.placed').withPayload<{ sku: string }>();

/** A unit of work per dispatch: scoped, with a disposer the container runs when the scope ends. */
class UnitOfWork {
  static made: UnitOfWork[] = [];
  readonly writes: string[] = [];
  closed = false;
  constructor() {
    UnitOfWork.made.push(this);
  }
  close(): void {
    this.closed = true;
  }
}

interface Cradle {
  uow: UnitOfWork;
  stockQueryHandler: StockQueryHandler;
}

class StockQueryHandler {
  static made = 0;
  readonly uow: UnitOfWork;
  constructor({ uow }: Cradle) {
    this.uow = uow;
    StockQueryHandler.made++;
  }
  handle(q: InferMessage<typeof Stock>): number {
    this.uow.writes.push(`stock ${q.payload.sku}`);
    return 3;
  }
}

function setup() {
  UnitOfWork.made = [];
  StockQueryHandler.made = 0;
  const container = createContainer<Cradle>({ injectionMode: InjectionMode.PROXY, strict: true });
  container.register({
    uow: asClass(UnitOfWork)
      .scoped()
      .disposer((u) => u.close()),
  });
  return container;
}

describe('awilixContainer', () => {
  it('runs each top-level dispatch in a scope of its own that nested dispatches share, disposed when it settles', async () => {
    const container = setup();
    class PlaceCommandHandler {
      readonly uow: UnitOfWork;
      constructor({ uow }: Cradle) {
        this.uow = uow;
      }
      async handle(cmd: InferMessage<typeof Place>, ctx: DispatchContext): Promise<string[]> {
        this.uow.writes.push(`place ${cmd.payload.sku}`);
        await mediator.query(Stock.create({ sku: cmd.payload.sku }));
        await mediator.query(Stock.create({ sku: 'other' }));
        ctx.emit(Placed, { sku: cmd.payload.sku });
        return this.uow.writes;
      }
    }
    const handlers = registerHandlers(container, [
      handle(Place, PlaceCommandHandler),
      handle(Stock, StockQueryHandler),
      on(
        Placed,
        (e, ctx) => void awilixScopeOf<Cradle>(ctx).cradle.uow.writes.push(`placed ${e.payload.sku}`),
      ),
    ]);
    const mediator = createMediator({ handlers, container: awilixContainer(container) });

    const writes = await mediator.send(Place.create({ sku: 'a' }));
    expect(writes).toEqual(['place a', 'stock a', 'stock other', 'placed a']);
    expect(UnitOfWork.made).toHaveLength(1);
    expect(UnitOfWork.made[0]!.closed).toBe(true);
    // the query handler is SCOPED: one instance served both nested queries
    expect(StockQueryHandler.made).toBe(1);

    await mediator.send(Place.create({ sku: 'b' }));
    expect(UnitOfWork.made).toHaveLength(2);
    expect(UnitOfWork.made[1]!.writes).toEqual(['place b', 'stock b', 'stock other', 'placed b']);
    expect(StockQueryHandler.made).toBe(2);
    // nothing leaked into the root container
    expect(container.cache.has('uow')).toBe(false);
  });

  it('builds a class handler that was not registered from the scope, and lets behaviors resolve from it', async () => {
    const container = setup();
    const seen: UnitOfWork[] = [];
    const audit = defineBehavior('audit', (message, ctx, next) => {
      const uow = awilixScopeOf<Cradle>(ctx).cradle.uow;
      uow.writes.push(`audit ${message.type}`);
      seen.push(uow);
      return next(message, ctx);
    });
    const mediator = createMediator({
      handlers: [handle(Stock, StockQueryHandler)],
      behaviors: [audit],
      container: awilixContainer(container),
    });
    expect(await mediator.query(Stock.create({ sku: 'x' }))).toBe(3);
    expect(seen[0]!.writes).toEqual(['audit aw.stock', 'stock x']);
    expect(seen[0]!.closed).toBe(true);
  });

  it('registers per-dispatch values through onScope', async () => {
    const container = setup();
    const mediator = createMediator({
      handlers: [handle(Stock, (_q, ctx) => awilixScopeOf<{ tenant: string }>(ctx).cradle.tenant.length)],
      container: awilixContainer(container, {
        onScope: (scope, init) => scope.register({ tenant: asValue(init.execution.tenantId ?? 'none') }),
      }),
    });
    expect(await mediator.query(Stock.create({ sku: 'x' }), { context: { tenantId: 'acme-eu' } })).toBe(7);
  });

  it('adopts a request scope given in the dispatch options, without disposing it', async () => {
    const container = setup();
    const request = container.createScope();
    request.register({ user: asValue('ada') });
    const mediator = createMediator({
      handlers: [
        handle(Stock, (_q, ctx) => {
          const { uow, user } = awilixScopeOf<Cradle & { user: string }>(ctx).cradle;
          uow.writes.push(user);
          return uow.writes.length;
        }),
      ],
      container: awilixContainer(container),
    });
    await mediator.query(Stock.create({ sku: 'x' }), { scope: awilixScope(request) });
    await mediator.query(Stock.create({ sku: 'x' }), { scope: awilixScope(request) });
    // one request, one unit of work, still open: the request's owner disposes it
    expect(UnitOfWork.made).toHaveLength(1);
    expect(UnitOfWork.made[0]!.writes).toEqual(['ada', 'ada']);
    expect(UnitOfWork.made[0]!.closed).toBe(false);
    await request.dispose();
    expect(UnitOfWork.made[0]!.closed).toBe(true);
  });
});

describe('awilix adapter fails closed', () => {
  it('refuses what is not an awilix container', () => {
    expect(() => awilixContainer({} as never)).toThrow(ConfigurationError);
    expect(() => awilixScope(undefined as never)).toThrow(ConfigurationError);
    expect(() => registerHandlers({} as never, [])).toThrow(ConfigurationError);
    expect(() => awilixContainer(setup(), { onScope: 'x' as never })).toThrow(ConfigurationError);
  });

  it('refuses a handler name taken by another registration, and a wrong lifetime', () => {
    const container = setup();
    container.register({ stockQueryHandler: asValue(1 as never) });
    expect(() => registerHandlers(container, [handle(Stock, StockQueryHandler)])).toThrow(
      /already registered/,
    );
    expect(() =>
      registerHandlers(setup(), [handle(Stock, StockQueryHandler)], { lifetime: 'FOREVER' as never }),
    ).toThrow(/lifetime/);
    // registering the same handlers twice is harmless
    const again = setup();
    registerHandlers(again, [handle(Stock, StockQueryHandler)]);
    expect(() => registerHandlers(again, [handle(Stock, StockQueryHandler)])).not.toThrow();
  });

  it('says so when a dispatch has no awilix scope', async () => {
    const mediator = createMediator({
      handlers: [handle(Stock, (_q, ctx) => awilixScopeOf(ctx) as never)],
    });
    await expect(mediator.query(Stock.create({ sku: 'x' }))).rejects.toThrow(/no awilix scope/);
  });
});
