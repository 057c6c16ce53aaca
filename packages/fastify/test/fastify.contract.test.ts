import type { AddressInfo } from 'node:net';
import { cqrsFastify } from '@cqrs-ts/fastify';
import { describeHttpContract } from '@cqrs-ts/testing/contracts';
import Fastify from 'fastify';

describeHttpContract('fastify', {
  start: async (options) => {
    const app = Fastify();
    await app.register(cqrsFastify, options);
    await app.listen({ port: 0, host: '127.0.0.1' });
    return {
      url: `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`,
      close: async () => {
        app.server.closeAllConnections();
        await app.close();
      },
    };
  },
});
