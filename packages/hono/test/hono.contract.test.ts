import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { DependencyScope } from '@cqrs-ts/core';
import { type CqrsHonoOptions, mountCqrs } from '@cqrs-ts/hono';
import { describeHttpContract } from '@cqrs-ts/testing/contracts';
import { serve } from '@hono/node-server';
import { Hono } from 'hono';

/** Serves `app` on 127.0.0.1 (port 0). */
async function listen(app: { fetch: (request: Request) => Response | Promise<Response> }) {
  const server = await new Promise<ReturnType<typeof serve>>((resolve) => {
    const s = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' }, () => resolve(s));
  });
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () =>
      new Promise<void>((resolve) => {
        (server as Server).closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

describeHttpContract('hono', {
  start: async (options) => {
    const app = new Hono();
    mountCqrs(app, options);
    return listen(app);
  },
  // a middleware opens the request's scope and disposes it once the handler chain is done
  startWithRequestScope: async (options, open) => {
    const app = new Hono<{ Variables: { scope: DependencyScope } }>();
    app.use(async (c, next) => {
      const scope = open();
      c.set('scope', scope);
      try {
        await next();
      } finally {
        await scope.dispose?.();
      }
    });
    const scoped: CqrsHonoOptions = { ...options, scope: (c) => c.get('scope') as DependencyScope };
    mountCqrs(app as unknown as Hono, scoped);
    return listen(app);
  },
});
