import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mountCqrs } from '@cqrs-ts/express';
import { describeHttpContract } from '@cqrs-ts/testing/contracts';
import express from 'express';

describeHttpContract('express', {
  start: async (options) => {
    const app = express();
    mountCqrs(app, options);
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
  },
});
