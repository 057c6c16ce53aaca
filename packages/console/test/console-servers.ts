/** The console mounted with one call on each framework, listening on loopback. */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { type Console, consoleFastify, mountConsoleExpress, mountConsoleHono } from '@cqrs-ts/console';
import { serve } from '@hono/node-server';
import express from 'express';
import Fastify from 'fastify';
import { Hono } from 'hono';

export interface Served {
  readonly url: string;
  close(): Promise<void>;
}

const closeServer = (server: Server) =>
  new Promise<void>((resolve) => {
    server.closeAllConnections();
    server.close(() => resolve());
  });

const urlOf = (server: Server) => `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

export const FRAMEWORKS = {
  async fastify(console: Console): Promise<Served> {
    const app = Fastify();
    app.get('/hello', async () => 'hi'); // the app's own routes keep working
    await app.register(consoleFastify, { console });
    await app.listen({ port: 0, host: '127.0.0.1' });
    return {
      url: urlOf(app.server),
      close: async () => {
        app.server.closeAllConnections();
        await app.close();
      },
    };
  },
  async hono(console: Console): Promise<Served> {
    const app = new Hono();
    app.get('/hello', (c) => c.text('hi'));
    mountConsoleHono(app, console);
    const server = await new Promise<Server>((resolve) => {
      const s = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' }, () => resolve(s as Server));
    });
    return { url: urlOf(server), close: () => closeServer(server) };
  },
  async express(console: Console): Promise<Served> {
    const app = express();
    app.get('/hello', (_req, res) => {
      res.send('hi');
    });
    mountConsoleExpress(app, console);
    const server = createServer(app);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return { url: urlOf(server), close: () => closeServer(server) };
  },
} satisfies Record<string, (console: Console) => Promise<Served>>;
