import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { mountCqrs as mountExpress } from '@cqrs-ts/express';
import { cqrsFastify } from '@cqrs-ts/fastify';
import { mountCqrs as mountHono } from '@cqrs-ts/hono';
import type { AdapterOptions } from '@cqrs-ts/http';
import { serve } from '@hono/node-server';
import express from 'express';
import Fastify from 'fastify';
import { Hono } from 'hono';

export const MAIN = fileURLToPath(new URL('../src/service/main.ts', import.meta.url));

/** A temporary directory removed by `dispose()`. */
export function tempDir() {
  const dir = mkdtempSync(join(tmpdir(), 'orders-'));
  return { dir, dispose: () => rmSync(dir, { recursive: true, force: true }) };
}

export const json = { 'content-type': 'application/json' };

export function placeOrder(
  url: string,
  body: { customerId: string; lines: { sku: string; quantity: number }[]; address?: string },
  headers: Record<string, string> = {},
) {
  return fetch(`${url}/orders`, {
    method: 'POST',
    headers: { ...json, ...headers },
    body: JSON.stringify({ address: 'Main St 1', ...body }),
  });
}

/** Reads Server-Sent Events from `response` until `done(data)` is true; returns every event's id and data. */
export async function readEvents<T>(
  response: Response,
  done: (data: T) => boolean,
): Promise<{ id: string | undefined; data: T }[]> {
  const reader = response.body!.pipeThrough(new TextDecoderStream()).getReader();
  const events: { id: string | undefined; data: T }[] = [];
  let buffer = '';
  try {
    for (;;) {
      const { value, done: ended } = await reader.read();
      if (ended) return events;
      buffer += value;
      let end = buffer.indexOf('\n\n');
      while (end >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        end = buffer.indexOf('\n\n');
        const id = /^id: (.*)$/m.exec(block)?.[1];
        const data = /^data: (.*)$/m.exec(block)?.[1];
        if (data === undefined) continue;
        const parsed = JSON.parse(data) as T;
        events.push({ id, data: parsed });
        if (done(parsed)) return events;
      }
    }
  } finally {
    await reader.cancel().catch(() => {});
  }
}

/** A service process (`main.ts`) with its output; `ready` resolves with the API URL once it printed `ready`. */
export function startProcess(args: readonly string[], env: Record<string, string>) {
  const child: ChildProcess = spawn(process.execPath, ['--conditions=@cqrs-ts/source', MAIN, ...args], {
    env: { ...process.env, ORDERS_LOG_LEVEL: 'error', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  const ready = new Promise<string | undefined>((resolve, reject) => {
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      if (/^ready$/m.test(output)) resolve(/^API: +(\S+)\/orders$/m.exec(output)?.[1]);
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    void exited.then(({ code, signal }) =>
      reject(new Error(`exited ${code ?? signal} before ready:\n${output}`)),
    );
  });
  ready.catch(() => {});
  return {
    child,
    ready,
    exited,
    output: () => output,
    /** Resolves once the output matches `pattern`. */
    waitFor: (pattern: RegExp) =>
      new Promise<void>((resolve, reject) => {
        const check = () => {
          if (pattern.test(output)) {
            child.stdout!.off('data', check);
            child.stderr!.off('data', check);
            resolve();
          }
        };
        child.stdout!.on('data', check);
        child.stderr!.on('data', check);
        void exited.then(() => (pattern.test(output) ? resolve() : reject(new Error(`exited:\n${output}`))));
        check();
      }),
  };
}

/** A server listening on loopback, closed with its connections. */
export interface Listening {
  readonly url: string;
  close(): Promise<void>;
}

const listening = (server: Server): Listening => ({
  url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
  close: () =>
    new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
});

/** The same routes served by each framework package over real loopback HTTP. */
export const frameworks: Record<string, (options: AdapterOptions) => Promise<Listening>> = {
  fastify: async (options) => {
    const app = Fastify();
    await app.register(cqrsFastify, options);
    await app.listen({ port: 0, host: '127.0.0.1' });
    return listening(app.server);
  },
  hono: async (options) => {
    const app = new Hono();
    mountHono(app, options);
    return listening(
      await new Promise<Server>((resolve) => {
        const s = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' }, () => resolve(s as Server));
      }),
    );
  },
  express: async (options) => {
    const app = express();
    mountExpress(app, options);
    return listening(
      await new Promise<Server>((resolve) => {
        const s = app.listen(0, '127.0.0.1', () => resolve(s));
      }),
    );
  },
};
