import { Readable } from 'node:stream';
import type { CqrsErrorCode } from '@cqrs-ts/core';
import {
  AuthorizationError,
  CircuitOpenError,
  ConfigurationError,
  CQRS_ERROR_CODES,
  CqrsError,
  createMediator,
  defineCommand,
  defineQuery,
  defineStreamQuery,
  handle,
  handleStream,
  ValidationError,
} from '@cqrs-ts/core';
import {
  commandRoute,
  createHttpHandler,
  createOpenApiDocument,
  fetchRouteInput,
  HTTP_PROBLEMS,
  parseJsonBody,
  queryRoute,
  readBody,
  streamRoute,
  toProblem,
} from '@cqrs-ts/http';
import { waitFor } from '@cqrs-ts/testing';
import { createHttpFixture } from '@cqrs-ts/testing/contracts';
import { validate } from '@hyperjump/json-schema/openapi-3-1';
import { type } from 'arktype';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';

describe('problem table', () => {
  it('has a row for every error code, and answers every null row as a bare 500', () => {
    expect(Object.keys(HTTP_PROBLEMS).sort()).toEqual([...CQRS_ERROR_CODES].sort());
    for (const code of CQRS_ERROR_CODES) {
      const reply = toProblem(new CqrsError(code as CqrsErrorCode, `secret ${code}`), 'req-1');
      const row = HTTP_PROBLEMS[code];
      expect(reply.problem.status, code).toBe(row?.status ?? 500);
      expect(reply.unexpected, code).toBe(row === null);
      if (reply.problem.status >= 500) expect(JSON.stringify(reply.problem), code).not.toContain('secret');
      expect(reply.problem.instance).toBe('req-1');
    }
  });

  it('lists every validation issue as a JSON pointer, answers 401 for anonymous callers, Retry-After for a circuit', () => {
    const v = toProblem(
      new ValidationError('t', [
        { path: ['items', 0, 'a/b'], message: 'bad', code: 'x' },
        { path: [], message: 'whole', code: 'y' },
        { path: ['w'], message: 'warn', code: 'z', severity: 'warning' },
      ]),
      'r',
    );
    expect(v.problem.errors).toEqual([
      { pointer: '/items/0/a~1b', message: 'bad', code: 'x' },
      { pointer: '', message: 'whole', code: 'y' },
    ]);
    expect(toProblem(new AuthorizationError('t'), 'r', { anonymous: true }).problem.status).toBe(401);
    expect(toProblem(new AuthorizationError('t'), 'r').problem.status).toBe(403);
    const c = toProblem(new CircuitOpenError('x', 1_000_000_001_500, { now: 1_000_000_000_000 }), 'r');
    expect(c.headers).toEqual({ 'retry-after': '2' });
    expect(toProblem(new CircuitOpenError('x', undefined), 'r').headers).toBeUndefined();
  });

  it('takes a declared problem only with a valid status', () => {
    const own = Object.assign(new Error('no'), { problem: { status: 422, type: 'urn:x', title: 'X' } });
    expect(toProblem(own, 'r').problem).toMatchObject({ status: 422, type: 'urn:x', detail: 'no' });
    const bad = Object.assign(new Error('no'), { problem: { status: 200, type: 'urn:x', title: 'X' } });
    expect(toProblem(bad, 'r').problem.status).toBe(500);
    const server = Object.assign(new Error('inner'), { problem: { status: 502, type: 'urn:y', title: 'Y' } });
    expect(toProblem(server, 'r').problem).not.toHaveProperty('detail');
  });
});

describe('bodies', () => {
  it('stop reading past the limit and refuse polluting keys at any depth', async () => {
    let pulled = 0;
    const stream = new ReadableStream<Uint8Array>({
      pull(controller) {
        pulled++;
        controller.enqueue(new Uint8Array(1024));
      },
    });
    await expect(readBody(stream, 4096)).rejects.toMatchObject({ code: 'CQRS_PAYLOAD_TOO_LARGE' });
    expect(pulled).toBeLessThan(10);
    await expect(readBody('x', 10, 11)).rejects.toMatchObject({ code: 'CQRS_PAYLOAD_TOO_LARGE' });
    expect(() => parseJsonBody('{"a":[{"b":{"__proto__":{}}}]}')).toThrow(ValidationError);
    expect(() => parseJsonBody('{"constructor":{"prototype":{}}}')).toThrow(ValidationError);
    expect(parseJsonBody('{"constructor":"ok"}')).toEqual({ constructor: 'ok' });
    expect(() => parseJsonBody('['.repeat(100_000))).toThrow(/not valid JSON/);
    expect(parseJsonBody('  ')).toEqual({});
  });

  it('read a Node stream by its events, and refuse one a body parser already read', async () => {
    const stream = Readable.from([Buffer.from('{"a":'), Buffer.from('1}')], { objectMode: false });
    expect(parseJsonBody(await readBody(stream, 100))).toEqual({ a: 1 });
    await expect(readBody(Readable.from([Buffer.alloc(64)]), 10)).rejects.toMatchObject({
      code: 'CQRS_PAYLOAD_TOO_LARGE',
    });
    const read = Readable.from([Buffer.from('{}')]);
    for await (const _ of read) void _;
    await expect(readBody(read, 100, 2)).rejects.toMatchObject({ code: 'CQRS_CONFIGURATION' });
  });

  it('read a Fetch Request whole when its length is declared, as a stream when not, within the limit', async () => {
    const post = (body: string) => new Request('http://localhost/x', { method: 'POST', body });
    expect(parseJsonBody(await readBody(post('{"a":1}'), 100, 7))).toEqual({ a: 1 });
    expect(parseJsonBody(await readBody(post('{"a":2}'), 100))).toEqual({ a: 2 });
    // a declared length that lies is still held to the limit
    await expect(readBody(post('x'.repeat(64)), 10, 5)).rejects.toMatchObject({
      code: 'CQRS_PAYLOAD_TOO_LARGE',
    });
    await expect(readBody(post('x'.repeat(64)), 10)).rejects.toMatchObject({
      code: 'CQRS_PAYLOAD_TOO_LARGE',
    });
    expect(await readBody(new Request('http://localhost/x'), 10)).toBe('');
  });

  it('fetchRouteInput refuses what is not a Fetch Request, and takes path and query from its URL', () => {
    expect(() => fetchRouteInput({} as Request)).toThrow(ConfigurationError);
    expect(() => fetchRouteInput(undefined as unknown as Request)).toThrow(ConfigurationError);
    const input = fetchRouteInput(new Request('http://localhost/orders/7?x=1'));
    expect([input.method, input.path, input.search]).toEqual(['GET', '/orders/7', 'x=1']);
    expect(input.signal).toBeInstanceOf(AbortSignal);
    const reader = { get: (name: string) => (name === 'x-correlation-id' ? 'c-1' : undefined) };
    expect(
      fetchRouteInput(new Request('http://localhost/'), { headers: reader }).headers.get('x-correlation-id'),
    ).toBe('c-1');
  });
});

describe('createHttpHandler', () => {
  const Place = defineCommand('t.place', { schema: z.object({ id: z.string() }) }).returns<string>();
  const mediator = createMediator({ handlers: [handle(Place, () => 'ok')], unenforced: ['validation'] });

  it('refuses routes without a handler, with clashing paths, or asking for keys without the idempotency policy', () => {
    const Other = defineCommand('t.other');
    expect(() => createHttpHandler({ mediator, routes: [commandRoute(Other)] })).toThrow(/no handler/);
    expect(() =>
      createHttpHandler({
        mediator,
        routes: [commandRoute(Place), commandRoute(Place, { path: '/t/place' })],
      }),
    ).toThrow(/two routes/);
    expect(() =>
      createHttpHandler({ mediator, routes: [commandRoute(Place, { idempotencyKey: 'required' })] }),
    ).toThrow(/idempotency policy/);
    expect(() => createHttpHandler({ mediator, routes: [], maxBodyBytes: 0 })).toThrow(/maxBodyBytes/);
    expect(() => queryRoute(Place as never)).toThrow(/query definition/);
  });

  it('validates without the validation behavior (the route parses) and mounts default paths', async () => {
    const handler = createHttpHandler({ mediator, routes: [commandRoute(Place)] });
    expect(handler.routes.map((r) => `${r.method} ${r.path}`)).toEqual(['POST /t/place']);
    const bad = await handler.fetch(
      new Request('http://h/t/place', {
        method: 'POST',
        body: '{"id":1}',
        headers: { 'content-type': 'application/json' },
      }),
    );
    expect(bad.status).toBe(400);
    const ok = await handler.fetch(
      new Request('http://h/t/place', {
        method: 'POST',
        body: '{"id":"a"}',
        headers: { 'content-type': 'application/json' },
      }),
    );
    expect(await ok.json()).toBe('ok');
  });

  it('carries the baggage header with the command only when baggage is true (opt-in), and echoes it', async () => {
    const Tell = defineCommand('t.tell', { schema: z.object({ id: z.string() }) }).returns<string>();
    const tell = createMediator({
      handlers: [handle(Tell, (command) => command.metadata.baggage ?? 'none')],
      unenforced: ['validation'],
    });
    const send = (handler: ReturnType<typeof createHttpHandler>, baggage: string) =>
      handler.fetch(
        new Request('http://h/t/tell', {
          method: 'POST',
          body: '{"id":"a"}',
          headers: { 'content-type': 'application/json', baggage },
        }),
      );
    const off = createHttpHandler({ mediator: tell, routes: [commandRoute(Tell)] });
    expect(await (await send(off, 'user=alice')).json()).toBe('none');
    const on = createHttpHandler({ mediator: tell, routes: [commandRoute(Tell)], baggage: true });
    expect(await (await send(on, 'user=alice')).json()).toBe('user=alice');
    const invalid: string[] = [];
    const reporting = createHttpHandler({
      mediator: tell,
      routes: [commandRoute(Tell)],
      baggage: true,
      onInvalidHeader: (i) => invalid.push(i.header),
    });
    expect(await (await send(reporting, 'x'.repeat(9000))).json()).toBe('none');
    expect(invalid).toEqual(['baggage']);
    expect(() => createHttpHandler({ mediator: tell, routes: [], baggage: 'yes' as never })).toThrow(
      /baggage/,
    );
  });
});

describe('OpenAPI', () => {
  it('is a valid OpenAPI 3.1 document with the schemas of zod, arktype and the contract fixture', async () => {
    const Place = defineCommand('o.place', {
      schema: z.object({ sku: z.string(), qty: z.number().int().positive() }),
      result: z.object({ orderId: z.string() }),
      description: 'Places an order',
      tags: ['orders'],
    }).returns<{ orderId: string }>();
    const Get = defineQuery('o.get', { schema: type({ id: 'string', 'verbose?': 'boolean' }) });
    const Tail = defineStreamQuery('o.tail', { schema: z.object({ after: z.number().optional() }) });
    const mediator = createMediator({
      handlers: [
        handle(Place, () => ({ orderId: 'o' })),
        handle(Get, () => null),
        handleStream(Tail, async function* () {}),
      ],
      unenforced: ['validation'],
    });
    const handler = createHttpHandler({
      mediator,
      basePath: '/api',
      routes: [commandRoute(Place, { status: 201 }), queryRoute(Get, { path: '/o/:id' }), streamRoute(Tail)],
    });
    const doc = createOpenApiDocument(handler, { info: { title: 'orders', version: '1.0.0' } });
    const fixture = createOpenApiDocument(createHttpHandler(createHttpFixture().options), {
      info: { title: 'shop', version: '1' },
    });
    for (const d of [doc, fixture]) {
      const output = await validate('https://spec.openapis.org/oas/3.1/schema-base', d as never, 'BASIC');
      expect(output.valid, JSON.stringify(output)).toBe(true);
    }
    const paths = doc.paths as Record<string, Record<string, Record<string, unknown>>>;
    expect(Object.keys(paths).sort()).toEqual(['/api/o/place', '/api/o/tail', '/api/o/{id}']);
    expect(paths['/api/o/place']!.post!.requestBody).toMatchObject({
      content: { 'application/json': { schema: { properties: { qty: { type: 'integer' } } } } },
    });
    expect(paths['/api/o/place']!.post!.responses).toMatchObject({
      '201': { content: { 'application/json': { schema: { properties: { orderId: { type: 'string' } } } } } },
    });
    expect(paths['/api/o/{id}']!.get!.parameters).toEqual([
      { name: 'id', in: 'path', required: true, schema: { type: 'string' } },
      { name: 'verbose', in: 'query', required: false, schema: { type: 'boolean' } },
    ]);
    const shop = fixture.paths as Record<string, Record<string, Record<string, unknown>>>;
    expect(shop['/payments']!.post!.parameters).toEqual([
      expect.objectContaining({ name: 'Idempotency-Key', in: 'header', required: true }),
    ]);
    expect(JSON.stringify(shop['/orders']!.get!.parameters)).toContain('"maximum":50');
  });
});

describe('stream bodies', () => {
  const Feed = defineStreamQuery('t.feed', { schema: z.object({ fail: z.string().optional() }) }).yields<{
    position: number;
    text?: string;
  }>();
  /** A feed whose second item waits for `release`, then (with ?fail=1) fails; `closed` counts finished handlers. */
  function feed() {
    const state = { closed: 0, release: (): void => {} };
    const gate = new Promise<void>((resolve) => {
      state.release = resolve;
    });
    const mediator = createMediator({
      unenforced: ['validation'],
      handlers: [
        handleStream(Feed, async function* (q) {
          try {
            yield { position: 1, text: 'a\nid: 99' };
            await gate;
            if (q.payload.fail !== undefined) throw new Error('secret broke');
            yield { position: 2 };
          } finally {
            state.closed++;
          }
        }),
      ],
    });
    const handler = createHttpHandler({ mediator, routes: [streamRoute(Feed)], heartbeatMs: 20 });
    return { state, handler };
  }
  const decoder = new TextDecoder();
  async function read(reader: ReadableStreamDefaultReader<Uint8Array>): Promise<string | undefined> {
    const r = await reader.read();
    return r.done ? undefined : decoder.decode(r.value);
  }

  it('write one event per item, heartbeats while the next item is late, then the item, then end', async () => {
    const { state, handler } = feed();
    const response = await handler.fetch(new Request('http://h/t/feed'));
    const reader = response.body!.getReader();
    expect(await read(reader)).toBe('id: 1\ndata: {"position":1,"text":"a\\nid: 99"}\n\n');
    expect(await read(reader)).toBe(': heartbeat\n\n');
    expect(await read(reader)).toBe(': heartbeat\n\n');
    state.release();
    let next = await read(reader);
    while (next === ': heartbeat\n\n') next = await read(reader);
    expect(next).toBe('id: 2\ndata: {"position":2}\n\n');
    expect(await read(reader)).toBeUndefined();
    expect(state.closed).toBe(1);
  });

  it('end a stream that fails after its first item with one problem event, without the error text', async () => {
    const { state, handler } = feed();
    const response = await handler.fetch(new Request('http://h/t/feed?fail=1'));
    expect(response.status).toBe(200);
    const reader = response.body!.getReader();
    expect(await read(reader)).toMatch(/^id: 1\n/);
    state.release();
    let next = await read(reader);
    while (next === ': heartbeat\n\n') next = await read(reader);
    expect(next).toMatch(/^event: problem\ndata: \{.*"status":500/);
    expect(next).not.toContain('secret');
    expect(await read(reader)).toBeUndefined();
    expect(state.closed).toBe(1);
  });

  it('answer pulls made without waiting for the previous one in order, as an async generator does', async () => {
    const { state, handler } = feed();
    const reply = await handler.handle(fetchRouteInput(new Request('http://h/t/feed')));
    const body = reply.body as AsyncGenerator<string, void, undefined>;
    const pulls = [body.next(), body.next(), body.next()];
    state.release();
    const results = await Promise.all(pulls);
    const values = results.map((r) => r.value).filter((v) => v !== ': heartbeat\n\n');
    expect(values.slice(0, 2)).toEqual([
      'id: 1\ndata: {"position":1,"text":"a\\nid: 99"}\n\n',
      'id: 2\ndata: {"position":2}\n\n',
    ]);
    expect(await body.next()).toEqual({ done: true, value: undefined });
  });

  it('close the handler when the client cancels while it waits for an item', async () => {
    const { state, handler } = feed();
    const response = await handler.fetch(new Request('http://h/t/feed'));
    const reader = response.body!.getReader();
    await read(reader);
    expect(await read(reader)).toBe(': heartbeat\n\n');
    await reader.cancel();
    expect(state.closed).toBe(0); // the handler still awaits its gate
    state.release();
    await waitFor(() => state.closed === 1, 5_000, 'the handler to end');
  });
});
