import type { AddressInfo } from 'node:net';
import { mountCqrs } from '@cqrs-ts/hono';
import { describeHttpContract } from '@cqrs-ts/testing/contracts';
import { serve } from '@hono/node-server';
import { Hono } from 'hono';

describeHttpContract('hono', {
  start: async (options) => {
    const app = new Hono();
    mountCqrs(app, options);
    const server = await new Promise<ReturnType<typeof serve>>((resolve) => {
      const s = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' }, () => resolve(s));
    });
    return {
      url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
      close: () =>
        new Promise<void>((resolve) => {
          (server as import('node:http').Server).closeAllConnections();
          server.close(() => resolve());
        }),
    };
  },
});
