import { request as httpRequest } from 'node:http';
import {
  createHealth,
  createMediator,
  type DependencyScope,
  defineCommand,
  defineQuery,
  type HealthReport,
  handle,
} from '@cqrs-ts/core';
import { type AdapterOptions, commandRoute } from '@cqrs-ts/http';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { waitFor } from '../wait-for.ts';
import type { HttpFixtureState } from './http-fixture.ts';
import { createHttpFixture } from './http-fixture.ts';

/** A server the contract talks to over loopback HTTP. */
export interface HttpServer {
  /** Base URL, e.g. `http://127.0.0.1:40123`. */
  readonly url: string;
  close(): Promise<void>;
}

/**
 * What an HTTP adapter gives the contract: `start` mounts the routes of `options` (as `createHttpHandler` takes
 * them, with the framework package's `openapi` and `health`) on the framework's own server, listening on 127.0.0.1 (port 0), and resolves once it listens.
 */
export interface HttpServerHarness {
  start(options: AdapterOptions): Promise<HttpServer>;
  /**
   * Like `start`, with the framework's own per-request hook (middleware) calling `open()` for each request, handing
   * that scope to the adapter's `scope` option, and disposing it once the response is sent, as a DI container's
   * request scope would. Without it the request-scope case is skipped.
   */
  startWithRequestScope?(options: AdapterOptions, open: () => DependencyScope): Promise<HttpServer>;
}

interface RawReply {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly text: string;
}

/** A request through `node:http`, for what `fetch` refuses to send; resolves on the answer even if the upload is cut. */
function raw(
  url: string,
  init: {
    method: string;
    path: string;
    headers?: Record<string, string>;
    chunks?: readonly (string | Buffer)[];
  },
): Promise<RawReply> {
  return new Promise((resolve, reject) => {
    const target = new URL(init.path, url);
    const req = httpRequest(
      {
        host: target.hostname,
        port: target.port,
        path: target.pathname + target.search,
        method: init.method,
        headers: init.headers,
        agent: false,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            text: Buffer.concat(chunks).toString('utf8'),
          }),
        );
        res.on('error', reject);
      },
    );
    req.on('error', (error) => {
      // the server may close the connection after answering a body it refused: the answer counts
      if (
        (error as NodeJS.ErrnoException).code !== 'EPIPE' &&
        (error as NodeJS.ErrnoException).code !== 'ECONNRESET'
      )
        reject(error);
    });
    for (const chunk of init.chunks ?? []) req.write(chunk);
    req.end();
  });
}

async function json(response: Response): Promise<Record<string, unknown>> {
  return (await response.json()) as Record<string, unknown>;
}

/** Reads SSE text from a response until `done(text)` holds, then disconnects. */
async function readSse(
  response: Response,
  done: (text: string) => boolean,
  abort?: AbortController,
): Promise<string> {
  const reader = response.body!.getReader();
  const decoder = new TextDecoder();
  let text = '';
  while (!done(text)) {
    const { value, done: end } = await reader.read();
    if (end) break;
    text += decoder.decode(value, { stream: true });
  }
  if (abort !== undefined) abort.abort();
  else await reader.cancel();
  return text;
}

function dataOf(text: string): unknown[] {
  return [...text.matchAll(/^data: (.*)$/gm)].map((m) => JSON.parse(m[1]!));
}

/**
 * The HTTP contract every adapter passes, over real loopback HTTP: routes from definitions, problem details for
 * every failure (never a 500 for bad input), request context in and out, `Idempotency-Key`, and SSE.
 */
export function describeHttpContract(name: string, harness: HttpServerHarness): void {
  describe(`HTTP contract: ${name}`, () => {
    let server: HttpServer;
    let state: HttpFixtureState;
    let url: string;
    const post = (path: string, body: unknown, headers: Record<string, string> = {}) =>
      fetch(url + path, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...headers },
        body: typeof body === 'string' ? body : JSON.stringify(body),
      });

    beforeAll(async () => {
      const fixture = createHttpFixture();
      state = fixture.state;
      server = await harness.start(fixture.options);
      url = server.url;
    });
    afterAll(async () => {
      await server?.close();
    });
    beforeEach(() => {
      state.placed = 0;
      state.paid = 0;
      state.payGate = undefined;
      state.executions.length = 0;
      state.invalidHeaders.length = 0;
      state.unexpected.length = 0;
    });

    describe('commands', () => {
      it('take the JSON body and answer the result with the route status, echoing the request context', async () => {
        const response = await post('/orders', { sku: 'a', qty: 2 }, { 'x-correlation-id': 'corr-1' });
        expect(response.status).toBe(201);
        expect(response.headers.get('content-type')).toMatch(/^application\/json/);
        expect(await json(response)).toEqual({ orderId: 'o-1' });
        expect(response.headers.get('x-correlation-id')).toBe('corr-1');
        expect(response.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
        expect(state.executions[0]).toMatchObject({ source: 'http' });
      });

      it('answer a payload of the wrong shape with 400 and every field issue', async () => {
        const response = await post('/orders', { qty: 0, extra: true });
        expect(response.status).toBe(400);
        expect(response.headers.get('content-type')).toMatch(/^application\/problem\+json/);
        const problem = await json(response);
        expect(problem).toMatchObject({ status: 400, code: 'CQRS_VALIDATION' });
        expect((problem.errors as { pointer: string }[]).map((e) => e.pointer).sort()).toEqual([
          '/extra',
          '/qty',
          '/sku',
        ]);
        expect(problem.instance).toBe(response.headers.get('x-request-id'));
        expect(state.placed).toBe(0);
      });

      it('answer malformed JSON, a non-object body and invalid UTF-8 with 400', async () => {
        for (const body of ['{"sku": "a",', '[1,2]', '"text"', '{"a":1}{"b":2}']) {
          const response = await post('/orders', body);
          expect(response.status, body).toBe(400);
          expect((await json(response)).status).toBe(400);
        }
        const bad = await raw(url, {
          method: 'POST',
          path: '/orders',
          headers: { 'content-type': 'application/json' },
          chunks: [Buffer.from([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x3a, 0x31, 0x7d])],
        });
        expect(bad.status).toBe(400);
      });

      it('answer a body of the wrong content type with 400', async () => {
        const response = await fetch(`${url}/orders`, {
          method: 'POST',
          headers: { 'content-type': 'text/plain' },
          body: JSON.stringify({ sku: 'a', qty: 1 }),
        });
        expect(response.status).toBe(400);
        expect(await json(response)).toMatchObject({
          code: 'CQRS_VALIDATION',
          errors: [{ pointer: '/headers/content-type', code: 'unsupported_media_type' }],
        });
        expect(state.placed).toBe(0);
      });

      it('answer a body over the limit with 413, declared or chunked, without reading it all', async () => {
        const big = JSON.stringify({ sku: 'x'.repeat(100_000), qty: 1 });
        const declared = await post('/orders', big);
        expect(declared.status).toBe(413);
        expect(await json(declared)).toMatchObject({ code: 'CQRS_PAYLOAD_TOO_LARGE', status: 413 });
        const chunked = await raw(url, {
          method: 'POST',
          path: '/orders',
          headers: { 'content-type': 'application/json', 'transfer-encoding': 'chunked' },
          chunks: Array.from({ length: 40 }, () => Buffer.alloc(16 * 1024, 0x20)),
        });
        expect(chunked.status).toBe(413);
        expect(state.placed).toBe(0);
        // the server still answers afterwards
        expect((await post('/orders', { sku: 'a', qty: 1 })).status).toBe(201);
      });

      it('refuse prototype-polluting keys, escaped or not, with 400', async () => {
        for (const body of [
          '{"sku":"a","qty":1,"__proto__":{"polluted":true}}',
          '{"sku":"a","qty":1,"\\u005f_proto__":{"polluted":true}}',
          '{"sku":"a","qty":1,"nested":{"constructor":{"prototype":{"polluted":true}}}}',
        ]) {
          const response = await post('/orders', body);
          expect(response.status, body).toBe(400);
          expect((await json(response)).errors).toEqual([expect.objectContaining({ code: 'forbidden_key' })]);
        }
        expect(({} as { polluted?: boolean }).polluted).toBeUndefined();
        expect(state.placed).toBe(0);
      });

      it('map errors through the table: 404, 409, 503 with Retry-After, 504', async () => {
        const missing = await post('/orders', { sku: 'missing', qty: 1 });
        expect(missing.status).toBe(404);
        expect(await json(missing)).toMatchObject({
          code: 'CQRS_NOT_FOUND',
          type: 'urn:cqrs-ts:problem:not-found',
        });
        const race = await post('/orders', { sku: 'race', qty: 1 });
        expect(race.status).toBe(409);
        expect((await json(race)).code).toBe('CQRS_CONCURRENCY');
        const circuit = await post('/orders', { sku: 'circuit', qty: 1 });
        expect(circuit.status).toBe(503);
        expect(Number(circuit.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
        const body = await json(circuit);
        expect(body).toMatchObject({ code: 'CQRS_CIRCUIT_OPEN' });
        expect(JSON.stringify(body)).not.toContain('stock-api');
        const slow = await post('/slow-orders', { sku: 'slow', qty: 1 });
        expect(slow.status).toBe(504);
        expect((await json(slow)).code).toBe('CQRS_TIMEOUT');
      });

      it('answer a domain error with the status and type it declares', async () => {
        const response = await post('/orders', { sku: 'gone', qty: 1 });
        expect(response.status).toBe(409);
        expect(await json(response)).toMatchObject({
          type: 'https://example.com/problems/out-of-stock',
          title: 'Out of stock',
          detail: 'gone is out of stock',
        });
      });

      it('answer an unexpected error with 500 that leaks nothing and names the request id', async () => {
        const response = await post('/orders', { sku: 'boom', qty: 1 });
        expect(response.status).toBe(500);
        const text = await response.text();
        expect(text).not.toContain('db-secret-host');
        expect(text).not.toContain(' at ');
        const problem = JSON.parse(text) as Record<string, unknown>;
        expect(Object.keys(problem).sort()).toEqual(['code', 'instance', 'status', 'title', 'type']);
        expect(problem.instance).toBe(response.headers.get('x-request-id'));
        expect(state.unexpected.map((u) => u.requestId)).toEqual([problem.instance]);
      });
    });

    describe('context', () => {
      it('authenticates: 401 without a principal, 403 for a wrong one, 200 for the right one', async () => {
        expect((await post('/reset', {})).status).toBe(401);
        expect((await post('/reset', {}, { authorization: 'Bearer Bad!' })).status).toBe(401);
        expect((await post('/reset', {}, { authorization: 'Bearer alice' })).status).toBe(403);
        const ok = await post('/reset', {}, { authorization: 'Bearer root' });
        expect(ok.status).toBe(200);
        expect(await json(ok)).toEqual({ reset: true });
      });

      it('takes the tenant and user into the execution context', async () => {
        const response = await fetch(`${url}/orders/o-1`, {
          headers: { 'x-tenant-id': 'acme', authorization: 'Bearer alice' },
        });
        expect(await json(response)).toMatchObject({ tenant: 'acme' });
        expect(state.executions[0]).toMatchObject({
          tenantId: 'acme',
          user: { id: 'alice' },
          source: 'http',
        });
        const unsafe = await fetch(`${url}/orders/o-1`, { headers: { 'x-tenant-id': 'a b' } });
        expect(unsafe.status).toBe(400);
      });

      it('echoes a valid traceparent and tracestate, and replaces and reports invalid trace and correlation headers', async () => {
        const traceparent = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';
        const good = await fetch(`${url}/orders/o-1`, { headers: { traceparent, tracestate: 'v=1' } });
        expect(good.headers.get('traceparent')).toBe(traceparent);
        expect(good.headers.get('tracestate')).toBe('v=1');
        expect(good.headers.get('x-correlation-id')).toBe('0af7651916cd43dd8448eb211c80319c');
        const bad = await raw(url, {
          method: 'GET',
          path: '/orders/o-1',
          headers: { traceparent: '00-zz-nope-01', 'x-correlation-id': 'x'.repeat(300) },
        });
        expect(bad.status).toBe(200);
        expect(bad.headers.traceparent).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-00$/);
        expect(bad.headers['x-correlation-id']).not.toBe('x'.repeat(300));
        expect([...state.invalidHeaders].sort()).toEqual(['traceparent', 'x-correlation-id']);
      });
    });

    describe('queries', () => {
      it('take path parameters and the query string, coerced as the schema says', async () => {
        const response = await fetch(`${url}/orders/o%2F7?verbose=true`);
        expect(response.status).toBe(200);
        expect(await json(response)).toEqual({ id: 'o/7', verbose: true, tenant: null, version: 1 });
        const wrong = await fetch(`${url}/orders/o-7?verbose=maybe`);
        expect(wrong.status).toBe(400);
        expect(await json(wrong)).toMatchObject({ errors: [{ pointer: '/verbose' }] });
      });

      it('page with page and pageSize within the largest page size', async () => {
        const response = await fetch(`${url}/orders?page=2&pageSize=10&minTotal=2.5`);
        expect(response.status).toBe(200);
        expect(await json(response)).toMatchObject({
          page: 2,
          pageSize: 10,
          total: 120,
          items: [{ minTotal: 2.5 }],
        });
        const tooBig = await fetch(`${url}/orders?page=1&pageSize=500`);
        expect(tooBig.status).toBe(400);
        expect(await json(tooBig)).toMatchObject({ errors: [{ pointer: '/pageSize' }] });
        const notNumber = await fetch(`${url}/orders?page=1&pageSize=10&minTotal=lots`);
        expect(notNumber.status).toBe(400);
      });

      it('answers a list without page parameters with its first page in the default size', async () => {
        const first = await fetch(`${url}/orders`);
        expect(first.status).toBe(200);
        expect(await json(first)).toMatchObject({ page: 1, pageSize: 20, total: 120 });
        const second = await fetch(`${url}/orders?page=2`);
        expect(await json(second)).toMatchObject({ page: 2, pageSize: 20 });
        const zero = await fetch(`${url}/orders?page=0`);
        expect(zero.status).toBe(400); // a page given is checked, never clamped
      });

      it('refuse prototype-polluting query keys and answer unknown routes and missing things with 404', async () => {
        expect((await fetch(`${url}/orders?page=1&pageSize=1&__proto__=x`)).status).toBe(400);
        expect((await fetch(`${url}/orders?page=1&pageSize=1&constructor=x`)).status).toBe(400);
        const missing = await fetch(`${url}/orders/missing`);
        expect(missing.status).toBe(404);
        expect((await json(missing)).code).toBe('CQRS_NOT_FOUND');
        expect((await fetch(`${url}/nowhere`)).status).toBe(404);
      });
    });

    describe('optimistic concurrency', () => {
      it('sends the version as ETag, takes If-Match as the expected version, 412 when it moved on', async () => {
        const id = `c-${Date.now()}-${Math.random()}`;
        const read = await fetch(`${url}/orders/${id}`);
        const etag = read.headers.get('etag');
        expect(etag).toBe('"1"');
        const renamed = await post(`/orders/${id}/name`, { name: 'a' }, { 'if-match': etag! });
        expect(renamed.status).toBe(200);
        expect(renamed.headers.get('etag')).toBe('"2"');
        const stale = await post(`/orders/${id}/name`, { name: 'b' }, { 'if-match': etag! });
        expect(stale.status).toBe(412);
        expect(await json(stale)).toMatchObject({
          code: 'CQRS_CONCURRENCY',
          type: 'urn:cqrs-ts:problem:precondition-failed',
        });
        const blind = await post(`/orders/${id}/name`, { name: 'c', expectedVersion: 1 });
        expect(blind.status).toBe(409);
        for (const bad of ['W/"2"', '*', '"2", "3"', 'two'])
          expect((await post(`/orders/${id}/name`, { name: 'd' }, { 'if-match': bad })).status, bad).toBe(
            400,
          );
        expect((await post('/orders', { sku: 'a', qty: 1 }, { 'if-match': '"1"' })).status).toBe(400);
        expect(state.versions.get(id)).toBe(2);
      });
    });

    describe('Idempotency-Key', () => {
      it('is required where the route says so, and checked', async () => {
        const none = await post('/payments', { orderId: 'o-1', cents: 5 });
        expect(none.status).toBe(400);
        expect(await json(none)).toMatchObject({ errors: [{ pointer: '/headers/idempotency-key' }] });
        const tooLong = await post(
          '/payments',
          { orderId: 'o-1', cents: 5 },
          { 'idempotency-key': 'k'.repeat(201) },
        );
        expect(tooLong.status).toBe(400);
        const refused = await post('/orders', { sku: 'a', qty: 1 }, { 'idempotency-key': 'k-1' });
        expect(refused.status).toBe(400);
        expect(state.paid + state.placed).toBe(0);
      });

      it('replays the stored answer, 422 for another body with the same key', async () => {
        const key = { 'idempotency-key': `pay-${Date.now()}-${Math.random()}` };
        const first = await post('/payments', { orderId: 'o-1', cents: 5 }, key);
        expect(first.status).toBe(200);
        expect(first.headers.get('idempotency-replayed')).toBeNull();
        const again = await post('/payments', { orderId: 'o-1', cents: 5 }, key);
        expect(again.status).toBe(200);
        expect(again.headers.get('idempotency-replayed')).toBe('true');
        expect(await json(again)).toEqual(await json(first));
        expect(state.paid).toBe(1);
        const other = await post('/payments', { orderId: 'o-1', cents: 6 }, key);
        expect(other.status).toBe(422);
        expect((await json(other)).code).toBe('CQRS_IDEMPOTENCY_CONFLICT');
      });

      it('answers 409 while the first request runs; 100 concurrent requests run the handler once', async () => {
        let open!: () => void;
        state.payGate = new Promise<void>((resolve) => {
          open = resolve;
        });
        const key = { 'idempotency-key': `burst-${Date.now()}-${Math.random()}` };
        const first = post('/payments', { orderId: 'o-9', cents: 7 }, key);
        await waitFor(async () => {
          const probe = await post('/payments', { orderId: 'o-9', cents: 7 }, key);
          return probe.status === 409;
        });
        const burst = Array.from({ length: 100 }, () => post('/payments', { orderId: 'o-9', cents: 7 }, key));
        const statuses = await Promise.all(burst.map(async (p) => (await p).status));
        open();
        expect((await first).status).toBe(200);
        expect(new Set(statuses)).toEqual(new Set([409]));
        expect(state.paid).toBe(1);
        const replay = await post('/payments', { orderId: 'o-9', cents: 7 }, key);
        expect(replay.headers.get('idempotency-replayed')).toBe('true');
        expect(state.paid).toBe(1);
      });
    });

    describe('Server-Sent Events', () => {
      it('send one event per item with its position as id, then end', async () => {
        const response = await fetch(`${url}/orders/live?count=3`);
        expect(response.status).toBe(200);
        expect(response.headers.get('content-type')).toMatch(/^text\/event-stream/);
        const text = await response.text();
        expect(dataOf(text)).toEqual([
          { position: 1, n: 1 },
          { position: 2, n: 2 },
          { position: 3, n: 3 },
        ]);
        expect([...text.matchAll(/^id: (.*)$/gm)].map((m) => m[1])).toEqual(['1', '2', '3']);
      });

      it('resume after Last-Event-ID', async () => {
        const response = await fetch(`${url}/orders/live?count=2`, { headers: { 'last-event-id': '7' } });
        expect(dataOf(await response.text())).toEqual([
          { position: 8, n: 8 },
          { position: 9, n: 9 },
        ]);
      });

      it('answer a failure before the first item with its status', async () => {
        const response = await fetch(`${url}/orders/live?count=-1`);
        expect(response.status).toBe(400);
        expect((await json(response)).code).toBe('CQRS_VALIDATION');
      });

      it('send heartbeats while idle, and a client disconnect runs the handler finally', async () => {
        const closedBefore = state.streamsClosed;
        const abort = new AbortController();
        const response = await fetch(`${url}/orders/live?count=1&idleAfter=1`, { signal: abort.signal });
        const text = await readSse(response, (t) => t.includes(': heartbeat'), abort);
        expect(dataOf(text)).toEqual([{ position: 1, n: 1 }]);
        await waitFor(() => state.streamsClosed > closedBefore, 5_000, 'the stream handler to end');
      });
    });

    describe('health', () => {
      it('serves /health/live and /health/ready as application/health+json, 503 with the reason on fail', async () => {
        const dependency = { up: true };
        const health = createHealth({
          serviceId: 'orders',
          components: [
            {
              name: 'postgres',
              type: 'datastore',
              check: () =>
                dependency.up
                  ? { status: 'pass' }
                  : { status: 'fail', output: 'connect ECONNREFUSED 127.0.0.1:5432' },
            },
          ],
        });
        const own = await harness.start({ ...createHttpFixture().options, health: { health } });
        try {
          const live = await fetch(`${own.url}/health/live`);
          expect(live.status).toBe(200);
          expect(live.headers.get('content-type')).toBe('application/health+json');
          expect(live.headers.get('cache-control')).toBe('no-store');
          const liveBody = (await live.json()) as HealthReport;
          expect(liveBody).toMatchObject({ status: 'pass', serviceId: 'orders' });
          expect(Object.keys(liveBody.checks).sort()).toEqual(['event-loop', 'process']);
          const ready = await fetch(`${own.url}/health/ready`);
          expect(ready.status).toBe(200);
          expect(((await ready.json()) as HealthReport).checks.postgres?.[0]?.status).toBe('pass');
          dependency.up = false;
          const down = await fetch(`${own.url}/health/ready`);
          expect(down.status).toBe(503);
          const body = (await down.json()) as HealthReport;
          expect(body.status).toBe('fail');
          expect(body.checks.postgres?.[0]).toMatchObject({
            status: 'fail',
            componentType: 'datastore',
            output: 'connect ECONNREFUSED 127.0.0.1:5432',
          });
          expect((await fetch(`${own.url}/health/live`)).status).toBe(200); // liveness ignores dependencies
        } finally {
          health.close();
          await own.close();
        }
      });
    });

    describe('request scope', () => {
      it.skipIf(harness.startWithRequestScope === undefined)(
        'runs each request in the scope its hook opened: nested dispatches share it, its owner disposes it',
        async () => {
          interface Scope extends DependencyScope {
            readonly id: number;
            closed: boolean;
          }
          const opened: Scope[] = [];
          const open = (): Scope => {
            const scope: Scope = {
              id: opened.length + 1,
              closed: false,
              resolve: () => scope as never,
              dispose() {
                scope.closed = true;
              },
            };
            opened.push(scope);
            return scope;
          };
          const Place = defineCommand('scope.place')
            .withPayload<{ sku: string }>()
            .returns<{ outer: number; inner: number; closed: boolean }>();
          const Peek = defineQuery('scope.peek').withPayload<Record<string, never>>().returns<number>();
          const idOf = async (scope: DependencyScope | undefined) =>
            ((await scope!.resolve('scope')) as Scope).id;
          const mediator = createMediator({
            handlers: [
              handle(Place, async (_cmd, ctx) => ({
                outer: await idOf(ctx.scope),
                inner: await mediator.query(Peek.create({})),
                closed: ((await ctx.scope!.resolve('scope')) as Scope).closed,
              })),
              handle(Peek, (_q, ctx) => idOf(ctx.scope)),
            ],
          });
          const scoped = await harness.startWithRequestScope!(
            { mediator, routes: [commandRoute(Place, { path: '/place' })] },
            open,
          );
          try {
            const answers: unknown[] = [];
            for (let i = 0; i < 3; i++) {
              const res = await fetch(`${scoped.url}/place`, {
                method: 'POST',
                headers: { 'content-type': 'application/json' },
                body: '{"sku":"a"}',
              });
              expect(res.status).toBe(200);
              answers.push(await res.json());
            }
            expect(answers).toEqual([1, 2, 3].map((id) => ({ outer: id, inner: id, closed: false })));
            await waitFor(() => opened.every((s) => s.closed));
            expect(opened).toHaveLength(3);
          } finally {
            await scoped.close();
          }
        },
      );
    });
  });
}
