import {
  applicationMapSvg,
  type ConsoleAuditEntry,
  type ConsoleOptions,
  createConsole,
  sequenceSvg,
} from '@cqrs-ts/console';
import { AuthorizationError, createInMemorySagaStore, type HandlerInfo } from '@cqrs-ts/core';
import type { OutboxRecord } from '@cqrs-ts/core/spi';
import { beforeAll, describe, expect, it } from 'vitest';
import { type ConsoleFixture, consoleFixture } from './console-fixture.ts';

const ORIGIN = 'http://console.test';

/** The page's cookie and token, then an action the way the page sends it (overridable). */
async function session(c: ReturnType<typeof createConsole>) {
  const page = await c.fetch(new Request(`${ORIGIN}/console`));
  const cookie = page.headers.get('set-cookie')!.split(';')[0]!;
  const token = cookie.split('=')[1]!;
  return (
    path: string,
    body: string | Uint8Array | ReadableStream<Uint8Array> | null,
    headers: Record<string, string> = {},
  ) =>
    c.fetch(
      new Request(`${ORIGIN}/console/api${path}`, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          origin: ORIGIN,
          cookie,
          'x-csrf-token': token,
          ...headers,
        },
        body,
        duplex: 'half',
      } as RequestInit),
    );
}

describe('console security', () => {
  let f: ConsoleFixture;
  beforeAll(async () => {
    f = await consoleFixture();
  });
  const base = (extra: Partial<ConsoleOptions>): ConsoleOptions => ({
    mediator: f.mediator,
    outbox: { store: f.store, relay: f.relay },
    sagas: { store: f.sagaStore, runner: f.sagas },
    audit: () => {},
    ...extra,
  });

  it('a read-only console refuses every action (403) and its page offers none', async () => {
    const c = createConsole(base({ readOnly: true }));
    const act = await session(c);
    const r = await act('/outbox/dead-letters/replay', JSON.stringify({ ids: [f.deadIds[0]] }));
    expect(r.status).toBe(403);
    expect(await (await c.fetch(new Request(`${ORIGIN}/console`))).text()).toContain(
      '<meta name="console-actions" content="off">',
    );
    expect((await f.store.stats(Date.now())).dead).toBe(2);
  });

  it('a hook that throws refuses with its error, logged as refused; an audit sink that throws undoes nothing', async () => {
    const audit: ConsoleAuditEntry[] = [];
    const c = createConsole(
      base({
        authorize: ({ action }) => {
          if (action === 'outbox.delete') throw new AuthorizationError(action, 'deletes need two operators');
          return { id: 'bob' };
        },
        audit: (e) => {
          audit.push(e);
          throw new Error('the audit sink is down');
        },
      }),
    );
    const act = await session(c);
    const del = await act('/outbox/dead-letters/delete', JSON.stringify({ ids: [f.deadIds[0]] }));
    expect(del.status).toBe(403);
    expect(((await del.json()) as { detail: string }).detail).toContain('deletes need two operators');
    expect(audit.at(-1)).toMatchObject({ action: 'outbox.delete', outcome: 'refused', who: undefined });
    const replay = await act('/outbox/dead-letters/replay', JSON.stringify({ ids: [f.deadIds[0]] }));
    expect(replay.status).toBe(200);
    expect(audit.at(-1)).toMatchObject({ action: 'outbox.replay', outcome: 'done', who: 'bob', result: 1 });
    expect(c.auditLog().map((e) => e.outcome)).toEqual(['refused', 'done']);
  });

  it('a body streamed past 16 KiB without Content-Length is 413; a lone surrogate or bad UTF-8 is 400', async () => {
    const c = createConsole(base({ authorize: () => ({ id: 'x' }) }));
    const act = await session(c);
    const chunk = new TextEncoder().encode(`{"ids":["${'a'.repeat(4096)}`);
    let sent = 0;
    const stream = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (sent++ < 10) controller.enqueue(chunk);
        else controller.close();
      },
    });
    const big = await act('/outbox/dead-letters/replay', stream);
    expect(big.status).toBe(413);
    expect(sent).toBeLessThan(10); // stopped reading past the limit
    expect((await act('/outbox/dead-letters/replay', new Uint8Array([0x7b, 0xff, 0x7d]))).status).toBe(400);
    expect((await act('/outbox/dead-letters/replay', '{"ids":["\\ud800"]}')).status).toBe(400);
  });

  it('a forged or missing CSRF cookie is refused even with a matching header', async () => {
    const c = createConsole(base({ authorize: () => ({ id: 'x' }) }));
    const act = await session(c);
    const body = JSON.stringify({ ids: [f.deadIds[1]] });
    expect((await act('/outbox/dead-letters/replay', body, { cookie: '' })).status).toBe(403);
    expect(
      (
        await act('/outbox/dead-letters/replay', body, {
          cookie: 'cqrs_console_csrf=abc',
          'x-csrf-token': 'abc',
        })
      ).status,
    ).toBe(403);
    expect((await act('/outbox/dead-letters/replay', body, { 'x-csrf-token': 'A'.repeat(43) })).status).toBe(
      403,
    );
  });

  it('counts sagas by paging list when the store has no count', async () => {
    const { list, load, history } = f.sagaStore;
    const c = createConsole(base({ readOnly: true, sagas: { store: { list, load, history } } }));
    const r = (await (await c.fetch(new Request(`${ORIGIN}/console/api/sagas`))).json()) as {
      counts: Record<string, number>;
      capped: boolean;
    };
    expect(r.counts).toEqual(await f.sagaStore.count!());
    expect(r.capped).toBe(false);
  });

  it('escapes markup in every diagram label: message types, handler names, saga and step ids', async () => {
    const evil = '<script>alert(1)</script>"&\'';
    const info = {
      messageType: evil,
      kind: 'command',
      mode: 'request',
      handler: `<img src=x onerror=alert(2)>`,
      behaviors: [],
      policies: [],
      tags: [],
      description: undefined,
      emits: [evil],
      chain: undefined,
    } as unknown as HandlerInfo;
    for (const svg of [applicationMapSvg([info]), sequenceSvg([evil], [{ from: 0, to: 0, label: evil }])]) {
      expect(svg).not.toMatch(/<script|<img/);
      expect(svg).toContain('&lt;script&gt;');
    }
    const store = createInMemorySagaStore();
    const id = 'saga-1';
    await store.create({
      id,
      name: evil,
      definitionVersion: 1,
      context: '{}',
      owner: 'w',
      now: 1,
      leaseMs: 1000,
      deadlineAt: null,
    });
    await store.commit({
      id,
      owner: 'w',
      expectedVersion: 1,
      now: 2,
      status: 'failed',
      context: '{}',
      cursor: 0,
      error: null,
      lease: 'release',
      log: [
        {
          stepId: evil,
          slot: 0,
          action: 'act',
          status: 'failed',
          attempts: 1,
          result: null,
          error: evil,
          startedAt: 1,
          at: 2,
        },
      ],
    });
    const c = createConsole(base({ readOnly: true, sagas: { store } }));
    const svg = await (await c.fetch(new Request(`${ORIGIN}/console/api/sagas/${id}/log.svg`))).text();
    expect(svg).not.toMatch(/<script|<img/);
    expect(svg).toContain('&lt;script&gt;');
    expect(
      (await c.fetch(new Request(`${ORIGIN}/console/api/sagas/${id}/log.svg`))).headers.get(
        'content-security-policy',
      ),
    ).toContain("default-src 'none'");
  });

  it('answers only the allowed hosts when given (a DNS-rebinding page names its own)', async () => {
    const c = createConsole(base({ readOnly: true, allowedHosts: ['127.0.0.1', 'ops.example:8443'] }));
    const status = async (url: string) => (await c.fetch(new Request(url))).status;
    expect(await status('http://127.0.0.1:3000/console/api/outbox')).toBe(200);
    expect(await status('https://OPS.example:8443/console/api/outbox')).toBe(200);
    expect(await status('http://evil.example/console/api/outbox')).toBe(403);
    expect(await status('https://ops.example/console/api/outbox')).toBe(403);
  });

  it('shows a binary payload as base64 and a gzip bomb as an error, not expanded past its limit', async () => {
    const { gzipSync } = await import('node:zlib');
    const [dead0] = await f.store.listDeadLetters({ limit: 1 });
    const record = (payload: Uint8Array, contentEncoding: 'identity' | 'gzip'): OutboxRecord => ({
      ...dead0!,
      payload,
      contentEncoding,
    });
    const rows = [
      record(new Uint8Array([0xff, 0xfe, 0x00, 0x01]), 'identity'),
      record(gzipSync(Buffer.alloc(64 * 1024 * 1024)), 'gzip'),
    ];
    const c = createConsole(
      base({ readOnly: true, outbox: { store: { ...f.store, listDeadLetters: async () => rows } } }),
    );
    const r = (await (await c.fetch(new Request(`${ORIGIN}/console/api/outbox/dead-letters`))).json()) as {
      items: { payload: string }[];
    };
    expect(r.items[0]!.payload).toBe('base64://4AAQ==');
    expect(r.items[1]!.payload).toMatch(/^\(cannot decode the gzip payload: /);
  });

  it('answers outside its base path with a 404 problem, never throws', async () => {
    const c = createConsole(base({ readOnly: true }));
    const r = await c.fetch(new Request(`${ORIGIN}/elsewhere`));
    expect(r.status).toBe(404);
    expect(r.headers.get('content-type')).toBe('application/problem+json');
  });
});
