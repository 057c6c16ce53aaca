import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createHttpHandler, healthRoutes, nodeRouteInput, sendNodeReply } from '@cqrs-ts/http';
import type { HttpServer } from '@cqrs-ts/testing/contracts';
import { describeHttpContract } from '@cqrs-ts/testing/contracts';

/** The neutral handler on a bare `node:http` server, with its own route matching. */
async function listen(serve: Parameters<typeof createServer>[1]): Promise<HttpServer> {
  const server = createServer(serve);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

describeHttpContract('node:http', {
  start: async (options) => {
    const handler = createHttpHandler(options);
    const plain = options.health === undefined ? [] : healthRoutes(options.health);
    return listen((req, res) => {
      const own = plain.find((r) => req.method === 'GET' && r.path === req.url?.split('?')[0]);
      const reply = own !== undefined ? own.handle() : handler.handle(nodeRouteInput(req, res, undefined));
      void reply.then((r) => sendNodeReply(res, r));
    });
  },
});
