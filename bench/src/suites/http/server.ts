/**
 * A server process of the `http` suite: `server.ts <framework> <raw|cqrs>` listens on 127.0.0.1 (port 0) and
 * sends its port to the parent. Raw routes are hand-written in each framework and do the same work as the
 * cqrs-ts routes: the request's context as the contract asks for it (request id, correlation id in the metadata
 * and both as response headers, see `rawRequest`), zod validation, `mediator.send`, a JSON reply (a 400 problem
 * with every issue on invalid input), and for the stream a hand-written SSE loop with back-pressure.
 */
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mountCqrs as mountExpress } from '@cqrs-ts/express';
import { cqrsFastify } from '@cqrs-ts/fastify';
import { mountCqrs as mountHono } from '@cqrs-ts/hono';
import { serve } from '@hono/node-server';
import express from 'express';
import Fastify from 'fastify';
import { Hono } from 'hono';
import { stream } from 'hono/streaming';
import {
  cqrsOptions,
  Items,
  mediator,
  orderSchema,
  PlaceOrder,
  rawFrame,
  rawProblem,
  rawRequest,
} from './app.ts';

const [framework, mode] = process.argv.slice(2) as [string, string];

const PROBLEM = 'application/problem+json; charset=utf-8';
const nodeHeader = (headers: import('node:http').IncomingHttpHeaders) => (name: string) => {
  const v = headers[name];
  return Array.isArray(v) ? v[0] : v;
};

/**
 * The hand-written SSE loop, with what the stream route does by contract: a heartbeat comment every 15 s, and a
 * client disconnect aborting the stream's signal (the handler's `finally` runs).
 */
async function writeSse(
  res: import('node:http').ServerResponse,
  count: number,
  r: ReturnType<typeof rawRequest>,
): Promise<void> {
  res.writeHead(200, {
    ...r.headers,
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-cache',
  });
  const controller = new AbortController();
  const onClose = () => {
    if (!res.writableFinished) controller.abort();
  };
  res.once('close', onClose);
  const beat = setInterval(() => res.write(': heartbeat\n\n'), 15_000);
  beat.unref();
  try {
    const items = mediator.stream(Items.create({ count }, r.metadata), {
      ...r.options,
      signal: controller.signal,
    });
    for await (const item of items) {
      if (!res.write(rawFrame(item)))
        await new Promise<void>((resolve) => {
          const done = () => {
            res.off('drain', done);
            res.off('close', done);
            resolve();
          };
          res.on('drain', done);
          res.on('close', done);
        });
      if (controller.signal.aborted) break;
    }
  } finally {
    clearInterval(beat);
    res.off('close', onClose);
    res.end();
  }
}

async function start(): Promise<number> {
  if (framework === 'fastify') {
    const app = Fastify();
    if (mode === 'cqrs') await app.register(cqrsFastify, cqrsOptions);
    else {
      app.post('/orders', async (request, reply) => {
        const r = rawRequest(nodeHeader(request.headers));
        reply.headers(r.headers);
        const parsed = orderSchema.safeParse(request.body);
        if (!parsed.success) return reply.code(400).type(PROBLEM).send(rawProblem(parsed.error, r.requestId));
        return mediator.send(PlaceOrder.create(parsed.data, r.metadata), r.options);
      });
      app.get('/items', async (request, reply) => {
        const r = rawRequest(nodeHeader(request.headers));
        reply.hijack();
        await writeSse(reply.raw, Number((request.query as { count: string }).count), r);
      });
    }
    await app.listen({ port: 0, host: '127.0.0.1' });
    return (app.server.address() as AddressInfo).port;
  }
  if (framework === 'hono') {
    const app = new Hono();
    if (mode === 'cqrs') mountHono(app, cqrsOptions);
    else {
      app.post('/orders', async (c) => {
        const r = rawRequest((name) => c.req.header(name));
        const parsed = orderSchema.safeParse(await c.req.json());
        if (!parsed.success)
          return c.body(rawProblem(parsed.error, r.requestId), 400, {
            ...r.headers,
            'content-type': PROBLEM,
          });
        return c.json(
          await mediator.send(PlaceOrder.create(parsed.data, r.metadata), r.options),
          200,
          r.headers,
        );
      });
      app.get('/items', (c) => {
        const r = rawRequest((name) => c.req.header(name));
        for (const [name, value] of Object.entries(r.headers)) c.header(name, value);
        c.header('content-type', 'text/event-stream; charset=utf-8');
        return stream(c, async (s) => {
          const query = Items.create({ count: Number(c.req.query('count')) }, r.metadata);
          const beat = setInterval(() => void s.write(': heartbeat\n\n'), 15_000);
          try {
            for await (const item of mediator.stream(query, { ...r.options, signal: c.req.raw.signal }))
              await s.write(rawFrame(item));
          } finally {
            clearInterval(beat);
          }
        });
      });
    }
    const server = await new Promise<ReturnType<typeof serve>>((resolve) => {
      const s = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' }, () => resolve(s));
    });
    return (server.address() as AddressInfo).port;
  }
  const app = express();
  if (mode === 'cqrs') mountExpress(app, cqrsOptions);
  else {
    app.post('/orders', express.json(), (req, res, next) => {
      const r = rawRequest(nodeHeader(req.headers));
      res.set(r.headers);
      const parsed = orderSchema.safeParse(req.body);
      if (!parsed.success)
        return void res.status(400).type(PROBLEM).send(rawProblem(parsed.error, r.requestId));
      mediator
        .send(PlaceOrder.create(parsed.data, r.metadata), r.options)
        .then((result) => res.json(result))
        .catch(next);
    });
    app.get('/items', (req, res, next) => {
      writeSse(res, Number(req.query.count), rawRequest(nodeHeader(req.headers))).catch(next);
    });
  }
  const server = await new Promise<Server>((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s));
  });
  return (server.address() as AddressInfo).port;
}

const port = await start();
process.send?.({ port });
process.on('disconnect', () => process.exit(0));
process.on('SIGTERM', () => process.exit(0));
