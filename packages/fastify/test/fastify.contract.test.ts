import type { AddressInfo } from 'node:net';
import { awilixScope } from '@cqrs-ts/awilix';
import { createMediator, type DependencyScope, defineCommand, defineQuery, handle } from '@cqrs-ts/core';
import { cqrsFastify } from '@cqrs-ts/fastify';
import { commandRoute } from '@cqrs-ts/http';
import { describeHttpContract } from '@cqrs-ts/testing/contracts';
import { type AwilixContainer, asClass, createContainer, InjectionMode } from 'awilix';
import Fastify from 'fastify';
import { afterAll, beforeAll, expect, it } from 'vitest';

/** Registers the plugin with `options` on `app` and listens on 127.0.0.1 (port 0). */
async function listen(app: ReturnType<typeof Fastify>, options: Parameters<typeof cqrsFastify>[1]) {
  await app.register(cqrsFastify, options);
  await app.listen({ port: 0, host: '127.0.0.1' });
  return {
    url: `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`,
    close: async () => {
      app.server.closeAllConnections();
      await app.close();
    },
  };
}

describeHttpContract('fastify', {
  start: (options) => listen(Fastify(), options),
  // hooks open the request's scope and dispose it once the response is sent
  startWithRequestScope: (options, open) => {
    const app = Fastify();
    const scopes = new WeakMap<object, DependencyScope>();
    app.addHook('onRequest', async (request) => {
      scopes.set(request, open());
    });
    app.addHook('onResponse', async (request) => {
      await scopes.get(request)?.dispose?.();
    });
    return listen(app, { ...options, scope: (request) => scopes.get(request) });
  },
});

// The request scope (DI): the scope(request) option over a real server.
/** A request-scoped dependency: one per HTTP request, disposed when the request's scope ends. */
class UnitOfWork {
  static made: UnitOfWork[] = [];
  readonly id = UnitOfWork.made.length + 1;
  closed = false;
  constructor() {
    UnitOfWork.made.push(this);
  }
}

const Place = defineCommand('scope.place')
  .withPayload<{ sku: string }>()
  .returns<{ outer: number; inner: number }>();
const Peek = defineQuery('scope.peek').withPayload<Record<string, never>>().returns<number>();

declare module 'fastify' {
  interface FastifyRequest {
    diScope: AwilixContainer;
  }
}

const container = createContainer({ injectionMode: InjectionMode.PROXY, strict: true });
container.register({
  uow: asClass(UnitOfWork)
    .scoped()
    .disposer((u) => {
      u.closed = true;
    }),
});
const mediator = createMediator({
  handlers: [
    handle(Place, async (_cmd, ctx) => {
      const outer = ((await ctx.scope!.resolve('uow')) as UnitOfWork).id;
      const inner = await mediator.query(Peek.create({}));
      return { outer, inner };
    }),
    handle(Peek, async (_q, ctx) => ((await ctx.scope!.resolve('uow')) as UnitOfWork).id),
  ],
});
const app = Fastify();
// #region request-scope
// what @fastify/awilix does: a scope per request on `request.diScope`, disposed once the response is sent
app.addHook('onRequest', async (request) => {
  request.diScope = container.createScope();
});
app.addHook('onResponse', async (request) => {
  await request.diScope.dispose();
});
let url: string;
beforeAll(async () => {
  await app.register(cqrsFastify, {
    mediator,
    routes: [commandRoute(Place, { path: '/place' })],
    scope: (request) => awilixScope(request.diScope),
  });
  // #endregion request-scope
  await app.listen({ port: 0, host: '127.0.0.1' });
  url = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
});
afterAll(() => app.close());

it('runs each HTTP request in its request scope: one scoped instance per request, shared by nested dispatches', async () => {
  const place = async () => {
    const res = await fetch(`${url}/place`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ sku: 'a' }),
    });
    expect(res.status).toBe(200);
    return (await res.json()) as { outer: number; inner: number };
  };
  const first = await place();
  const second = await place();
  expect(first.outer).toBe(first.inner);
  expect(second.outer).toBe(second.inner);
  expect(second.outer).not.toBe(first.outer);
  expect(UnitOfWork.made).toHaveLength(2);
  // the request's owner disposes it (the hook, once the response went out), not the mediator
  await expect.poll(() => UnitOfWork.made.every((u) => u.closed)).toBe(true);
});
