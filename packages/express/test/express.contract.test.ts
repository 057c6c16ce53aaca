import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { DependencyScope } from '@cqrs-ts/core';
import { mountCqrs } from '@cqrs-ts/express';
import { describeHttpContract } from '@cqrs-ts/testing/contracts';
import express from 'express';

/** Serves `app` on 127.0.0.1 (port 0). */
async function listen(app: express.Express) {
  const server = await new Promise<Server>((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s));
  });
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

describeHttpContract('express', {
  start: async (options) => {
    const app = express();
    mountCqrs(app, options);
    return listen(app);
  },
  // a middleware opens the request's scope and disposes it once the response is sent
  startWithRequestScope: async (options, open) => {
    const app = express();
    const scopes = new WeakMap<express.Request, DependencyScope>();
    app.use((req, res, next) => {
      const scope = open();
      scopes.set(req, scope);
      res.on('finish', () => void scope.dispose?.());
      next();
    });
    mountCqrs(app, { ...options, scope: (req) => scopes.get(req) });
    return listen(app);
  },
});
