import 'reflect-metadata';
import {
  ConfigurationError,
  type DispatchContext,
  DuplicateHandlerError,
  defineBehavior,
  defineCommand,
  defineEvent,
  defineQuery,
  defineStreamQuery,
  handle,
  type InferMessage,
  type Mediator,
  type ScopeInit,
} from '@cqrs-ts/core';
import { CQRS_MEDIATOR, CqrsModule, MessageHandler, nestScopeOf, requestScope } from '@cqrs-ts/nestjs';
import { Inject, Injectable, Module, Scope } from '@nestjs/common';
import { ContextIdFactory, ModuleRef, NestFactory, REQUEST } from '@nestjs/core';
import { afterEach, describe, expect, it } from 'vitest';

const Place = defineCommand('nest.place').withPayload<{ sku: string }>().returns<string[]>();
const Stock = defineQuery('nest.stock').withPayload<{ sku: string }>().returns<number>();
const Placed = defineEvent('nest.placed').withPayload<{ sku: string }>();
const Tail = defineStreamQuery('nest.tail').withPayload<{ n: number }>().yields<number>();

/** One per application. */
@Injectable()
class Catalog {
  static made = 0;
  constructor() {
    Catalog.made++;
  }
  stock(sku: string): number {
    return sku.length;
  }
}

/** Request-scoped: one per top-level dispatch (or HTTP request). */
@Injectable({ scope: Scope.REQUEST })
class DispatchLog {
  static made: DispatchLog[] = [];
  readonly lines: string[] = [];
  readonly request: ScopeInit;
  constructor(@Inject(REQUEST) request: ScopeInit) {
    this.request = request;
    DispatchLog.made.push(this);
  }
}

@Injectable()
@MessageHandler(Place)
class PlaceHandler {
  readonly log: DispatchLog;
  readonly mediator: Mediator;
  constructor(log: DispatchLog, @Inject(CQRS_MEDIATOR) mediator: Mediator) {
    this.log = log;
    this.mediator = mediator;
  }
  async handle(cmd: InferMessage<typeof Place>, ctx: DispatchContext): Promise<string[]> {
    this.log.lines.push(`place ${cmd.payload.sku}`);
    await this.mediator.query(Stock.create({ sku: cmd.payload.sku }));
    ctx.emit(Placed, { sku: cmd.payload.sku });
    return this.log.lines;
  }
}

@Injectable()
@MessageHandler(Stock)
class StockHandler {
  static made = 0;
  readonly log: DispatchLog;
  readonly catalog: Catalog;
  constructor(log: DispatchLog, catalog: Catalog) {
    this.log = log;
    this.catalog = catalog;
    StockHandler.made++;
  }
  handle(q: InferMessage<typeof Stock>): number {
    this.log.lines.push(`stock ${q.payload.sku}`);
    return this.catalog.stock(q.payload.sku);
  }
}

/** A singleton handler: it asks the dispatch scope for the request-scoped log. */
@Injectable()
@MessageHandler(Placed)
class PlacedHandler {
  async handle(e: InferMessage<typeof Placed>, ctx: DispatchContext): Promise<void> {
    const log = await ctx.scope!.resolve(DispatchLog);
    log.lines.push(`placed ${e.payload.sku}`);
  }
}

@Module({ providers: [Catalog, DispatchLog, PlaceHandler, StockHandler, PlacedHandler] })
class OrdersModule {}

const apps: { close(): Promise<void> }[] = [];
afterEach(async () => {
  await Promise.all(apps.splice(0).map((app) => app.close()));
  DispatchLog.made = [];
  StockHandler.made = 0;
});

async function boot(root: new () => object) {
  const app = await NestFactory.createApplicationContext(root, { logger: false });
  apps.push(app);
  return { app, mediator: app.get<Mediator>(CQRS_MEDIATOR) };
}

describe('CqrsModule', () => {
  it('discovers handlers among the providers; request-scoped providers are one instance per top-level dispatch', async () => {
    @Module({ imports: [CqrsModule.forRoot(), OrdersModule] })
    class AppModule {}
    const { mediator } = await boot(AppModule);

    expect(await mediator.send(Place.create({ sku: 'tea' }))).toEqual([
      'place tea',
      'stock tea',
      'placed tea',
    ]);
    expect(await mediator.send(Place.create({ sku: 'cup' }))).toEqual([
      'place cup',
      'stock cup',
      'placed cup',
    ]);
    // one log per top-level send, shared by its nested query and its event handler
    expect(DispatchLog.made).toHaveLength(2);
    expect(DispatchLog.made[0]).not.toBe(DispatchLog.made[1]);
    expect(DispatchLog.made.map((l) => l.request.message.type)).toEqual(['nest.place', 'nest.place']);
    // StockHandler depends on a request-scoped provider, so Nest builds it per dispatch too; Catalog stays one
    expect(StockHandler.made).toBe(2);
    expect(Catalog.made).toBe(1);

    await mediator.query(Stock.create({ sku: 'x' }));
    expect(DispatchLog.made).toHaveLength(3);
    expect(DispatchLog.made[2]!.request.message.type).toBe('nest.stock');
  });

  it('lets behaviors and function handlers resolve providers from the dispatch scope', async () => {
    const seen: DispatchLog[] = [];
    const audit = defineBehavior('audit', async (message, ctx, next) => {
      const log = await ctx.scope!.resolve(DispatchLog);
      log.lines.push(`audit ${message.type}`);
      seen.push(log);
      return next(message, ctx);
    });
    @Module({
      imports: [
        CqrsModule.forRoot({
          behaviors: [audit],
          handlers: [
            handle(Stock, async (q, ctx) => {
              const catalog = await ctx.scope!.resolve(Catalog);
              // the same through Nest's own API
              const { moduleRef, contextId } = nestScopeOf(ctx.scope)!;
              expect(await moduleRef.resolve(DispatchLog, contextId, { strict: false })).toBe(seen[0]);
              return catalog.stock(q.payload.sku);
            }),
          ],
        }),
      ],
      providers: [Catalog, DispatchLog],
    })
    class AppModule {}
    const { mediator } = await boot(AppModule);
    expect(await mediator.query(Stock.create({ sku: 'four' }))).toBe(4);
    expect(seen[0]!.lines).toEqual(['audit nest.stock']);
    expect(nestScopeOf(undefined)).toBeUndefined();
  });

  it("shares an HTTP request's request-scoped providers with the handlers (requestScope)", async () => {
    @Module({ imports: [CqrsModule.forRoot(), OrdersModule] })
    class AppModule {}
    const { app, mediator } = await boot(AppModule);
    const moduleRef = app.get(ModuleRef);
    const request = { url: '/orders' };
    const scope = requestScope(moduleRef, request);
    // what a controller of that request gets injected (Nest's router attached the same context id)
    const controllerLog = await moduleRef.resolve(DispatchLog, ContextIdFactory.getByRequest(request), {
      strict: false,
    });
    await mediator.send(Place.create({ sku: 'a' }), { scope });
    await mediator.send(Place.create({ sku: 'b' }), { scope: requestScope(moduleRef, request) });
    expect(controllerLog.lines).toEqual(['place a', 'stock a', 'placed a', 'place b', 'stock b', 'placed b']);
    expect(DispatchLog.made).toHaveLength(1);
    expect(controllerLog.request).toBe(request);
  });
});

describe('CqrsModule fails closed', () => {
  it('refuses two providers handling one command when the application starts', async () => {
    @Injectable()
    @MessageHandler(Stock)
    class OtherStockHandler {
      handle(): number {
        return 0;
      }
    }
    @Module({ imports: [CqrsModule.forRoot(), OrdersModule], providers: [OtherStockHandler] })
    class AppModule {}
    await expect(
      NestFactory.createApplicationContext(AppModule, { logger: false, abortOnError: false }),
    ).rejects.toThrow(DuplicateHandlerError);
  });

  it('refuses a marked stream query (streams are function handlers), a non-definition and a class without handle', async () => {
    @Injectable()
    @MessageHandler(Tail)
    class TailHandler {
      handle(): number {
        return 0;
      }
    }
    @Module({ imports: [CqrsModule.forRoot()], providers: [TailHandler] })
    class AppModule {}
    await expect(
      NestFactory.createApplicationContext(AppModule, { logger: false, abortOnError: false }),
    ).rejects.toThrow(/handleStream/);
    expect(() => MessageHandler({} as never)).toThrow(ConfigurationError);
    expect(() => MessageHandler(Stock)(class NoHandle {})).toThrow(ConfigurationError);
    expect(() => CqrsModule.forRoot({ resolver: { resolve: () => undefined } } as never)).toThrow(
      ConfigurationError,
    );
  });
});
