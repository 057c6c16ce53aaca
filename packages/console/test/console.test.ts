import { type ConsoleAuditEntry, type ConsoleOptions, createConsole } from '@cqrs-ts/console';
import { createHealth, isCqrsError, relayHealth } from '@cqrs-ts/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ConsoleFixture, consoleFixture, XSS } from './console-fixture.ts';
import { FRAMEWORKS, type Served } from './console-servers.ts';

const optionsOf = (f: ConsoleFixture, audit: ConsoleAuditEntry[]): ConsoleOptions => ({
  mediator: f.mediator,
  outbox: { store: f.store, relay: f.relay },
  sagas: { store: f.sagaStore, runner: f.sagas },
  projections: { runner: f.projections, names: f.projectionNames },
  health: createHealth({ components: [relayHealth(f.relay)] }),
  heartbeats: { 'order-list loop': () => f.projections.heartbeat('order-list') },
  authorize: ({ request }) =>
    request.headers.get('authorization') === 'Bearer ops' ? { id: 'alice@ops' } : undefined,
  audit: (e) => audit.push(e),
});

describe('createConsole', () => {
  it('refuses to mount actions without an authorize hook (ConfigurationError), and mounts read-only', async () => {
    const f = await consoleFixture();
    let error: unknown;
    try {
      createConsole({ mediator: f.mediator, outbox: { store: f.store } });
    } catch (e) {
      error = e;
    }
    expect(isCqrsError(error, 'CQRS_CONFIGURATION')).toBe(true);
    const readOnly = createConsole({ mediator: f.mediator, outbox: { store: f.store }, readOnly: true });
    expect(readOnly.actions).toBe(false);
    expect(() => createConsole({ readOnly: true, basePath: '/a b' })).toThrow(/basePath/);
  });
});

describe('outbox throughput', () => {
  it('counts each settled minute once, then only the windows not yet known', async () => {
    const f = await consoleFixture();
    const requests: [number, number][] = [];
    const store = {
      ...f.store,
      publishedCounts: (r: { since: number; bucketMs: number; buckets: number }) => {
        requests.push([r.since, r.buckets]);
        return f.store.publishedCounts!(r);
      },
    };
    const minute = Math.floor((await f.relay.health()).lastPublishedAt! / 60_000) * 60_000;
    let t = minute + 30_000; // the fixture published its 6 records in this minute, before now
    const c = createConsole({ outbox: { store }, readOnly: true, now: () => t });
    const counts = async () =>
      (
        (await (await c.fetch(new Request('http://x/console/api/outbox'))).json()) as {
          throughput: { counts: number[] };
        }
      ).throughput.counts;
    const first = await counts();
    expect(first.at(-1)).toBe(6);
    expect(first.reduce((a, b) => a + b, 0)).toBe(6);
    t += 60_000; // a minute later: the previous window has settled, the new one is queried
    const second = await counts();
    expect(second.slice(-2)).toEqual([6, 0]);
    t += 1_000;
    await counts();
    expect(requests).toEqual([
      [minute - 14 * 60_000, 15],
      [minute, 2], // the window of the first call had not settled
      [minute + 60_000, 1], // only the current one
    ]);
  });
});

for (const [framework, start] of Object.entries(FRAMEWORKS)) {
  describe(`console on ${framework} over loopback`, () => {
    let f: ConsoleFixture;
    let served: Served;
    let base: string;
    const audit: ConsoleAuditEntry[] = [];
    let cookie = '';
    let token = '';

    beforeAll(async () => {
      f = await consoleFixture();
      served = await start(createConsole(optionsOf(f, audit)));
      base = `${served.url}/console`;
    });
    afterAll(() => served?.close());

    const action = (path: string, body: unknown, headers: Record<string, string> = {}) =>
      fetch(`${base}/api${path}`, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          cookie,
          'x-csrf-token': token,
          origin: served.url,
          'sec-fetch-site': 'same-origin',
          authorization: 'Bearer ops',
          ...headers,
        },
        body: typeof body === 'string' ? body : JSON.stringify(body),
      });

    it('serves the page with a strict CSP and a session CSRF cookie; the app keeps its own routes', async () => {
      const r = await fetch(base);
      expect(r.status).toBe(200);
      expect(r.headers.get('content-type')).toContain('text/html');
      const csp = r.headers.get('content-security-policy')!;
      expect(csp).toContain("script-src 'self'");
      expect(csp).not.toContain('unsafe-inline');
      expect(r.headers.get('x-content-type-options')).toBe('nosniff');
      const set = r.headers.get('set-cookie')!;
      expect(set).toMatch(/HttpOnly/);
      expect(set).toMatch(/SameSite=Strict/);
      cookie = set.split(';')[0]!;
      token = cookie.split('=')[1]!;
      expect(await r.text()).toContain(`content="${token}"`);
      expect((await fetch(`${base}/console.js`)).headers.get('content-type')).toContain('javascript');
      expect(await (await fetch(`${served.url}/hello`)).text()).toBe('hi');
    });

    it('answers the map from describe(), as JSON with Mermaid text and as SVG', async () => {
      const map = (await (await fetch(`${base}/api/map`)).json()) as {
        handlers: { messageType: string }[];
        mermaid: string;
      };
      expect(map.handlers.map((h) => h.messageType)).toContain('orders.place');
      expect(map.mermaid).toMatch(/^flowchart LR/);
      const svg = await (await fetch(`${base}/api/map.svg`)).text();
      expect(svg).toContain('<svg');
      expect(svg).toContain('orders.order-placed');
    });

    it('answers the outbox figures, throughput and dead letters with their payload and last error', async () => {
      const o = (await (await fetch(`${base}/api/outbox`)).json()) as {
        backlog: number;
        dead: number;
        throughput: { counts: number[] };
        relay: { running: boolean };
      };
      expect(o.backlog).toBe(3);
      expect(o.dead).toBe(2);
      expect(o.throughput.counts.reduce((a, b) => a + b, 0)).toBe(6);
      const dead = (await (await fetch(`${base}/api/outbox/dead-letters`)).json()) as {
        items: { id: string; payload: string; lastError: string }[];
      };
      expect(dead.items.map((d) => d.id)).toEqual(f.deadIds);
      expect(dead.items[0]!.payload).toContain(XSS.replaceAll('"', '\\"'));
      expect(dead.items[0]!.lastError).toContain('injected failure');
      expect(await (await fetch(`${base}/api/outbox/throughput.svg`)).text()).toContain('class="bar"');
    });

    it('refuses an action without the CSRF token, from another origin or site, or when the hook says no', async () => {
      const ids = [f.deadIds[1]];
      const noToken = await action('/outbox/dead-letters/replay', { ids }, { 'x-csrf-token': '' });
      expect(noToken.status).toBe(403);
      expect(noToken.headers.get('content-type')).toBe('application/problem+json');
      expect(
        (await action('/outbox/dead-letters/replay', { ids }, { origin: 'https://evil.example' })).status,
      ).toBe(403);
      expect(
        (await action('/outbox/dead-letters/replay', { ids }, { 'sec-fetch-site': 'cross-site' })).status,
      ).toBe(403);
      expect(
        (await action('/outbox/dead-letters/replay', { ids }, { authorization: 'Bearer intruder' })).status,
      ).toBe(403);
      expect(audit.at(-1)).toMatchObject({ action: 'outbox.replay', outcome: 'refused', who: undefined });
      expect((await f.store.stats(Date.now())).dead).toBe(2);
    });

    it('replays a dead letter (the relay publishes it) and deletes one, logging who did it', async () => {
      const delivered = new Promise<void>((resolve) => {
        const stop = f.broker.subscribe('orders', (m) => {
          if ((m.event.payload as { orderId: string }).orderId !== 'd2') return;
          stop();
          resolve();
        });
      });
      const r = await action('/outbox/dead-letters/replay', { ids: [f.deadIds[1]] });
      expect(r.status).toBe(200);
      expect(await r.json()).toEqual({ action: 'outbox.replay', result: 1, by: 'alice@ops' });
      await f.relay.runOnce();
      await delivered;
      const d = await action('/outbox/dead-letters/delete', { ids: [f.deadIds[0]] });
      expect(await d.json()).toMatchObject({ result: 1, by: 'alice@ops' });
      expect((await f.store.stats(Date.now())).dead).toBe(0);
      expect(audit.slice(-2).map((e) => [e.action, e.who, e.outcome, e.result])).toEqual([
        ['outbox.replay', 'alice@ops', 'done', 1],
        ['outbox.delete', 'alice@ops', 'done', 1],
      ]);
    });

    it('answers saga counts by state, a filtered list, one saga with its log and its sequence diagram', async () => {
      const all = (await (await fetch(`${base}/api/sagas`)).json()) as {
        counts: Record<string, number>;
        items: { id: string; status: string }[];
      };
      expect(all.counts).toMatchObject({ completed: 3, compensation_failed: 1, running: 0 });
      expect(all.items).toHaveLength(4);
      const failed = (await (
        await fetch(`${base}/api/sagas?status=compensation_failed&name=checkout`)
      ).json()) as {
        items: { id: string }[];
      };
      expect(failed.items.map((i) => i.id)).toEqual([f.failedSagaId]);
      const one = (await (await fetch(`${base}/api/sagas/${f.failedSagaId}`)).json()) as {
        saga: { status: string };
        log: { stepId: string; action: string; status: string }[];
      };
      expect(one.saga.status).toBe('compensation_failed');
      expect(one.log.map((e) => `${e.stepId} ${e.action} ${e.status}`)).toContain('ship act failed');
      const svg = await (await fetch(`${base}/api/sagas/${f.failedSagaId}/log.svg`)).text();
      expect(svg).toContain('>charge<');
      expect(svg).toContain('>checkout<');
    });

    it('answers each projection with position, head, lag and state, and health with heartbeats', async () => {
      const p = (await (await fetch(`${base}/api/projections`)).json()) as {
        items: { name: string; lagEvents: number; state: string; position: string; head: string }[];
      };
      expect(p.items.map((i) => i.name)).toEqual(['order-list', 'order-notes', 'order-audit']);
      const [list, notes, audited] = p.items as unknown as [
        (typeof p.items)[0],
        (typeof p.items)[0],
        { lastError: { eventType: string; error: string; outcome: string } },
      ];
      expect(audited.lastError).toMatchObject({ eventType: 'orders.order-placed', outcome: 'skipped' });
      expect(audited.lastError.error).toContain(XSS);
      expect(list!.lagEvents).toBeGreaterThan(0); // the events appended after its catch-up
      expect(notes!.lagEvents).toBeGreaterThan(list!.lagEvents); // never ran
      expect([list!.state, notes!.state, notes!.position]).toEqual(['running', 'idle', '0']);
      expect(list!.head).toBe(notes!.head);
      const h = (await (await fetch(`${base}/api/health`)).json()) as {
        components: { name: string; status: string; heartbeat?: { cycles: number } }[];
      };
      const names = h.components.map((c) => c.name);
      expect(names).toEqual(
        expect.arrayContaining([
          'process',
          'event-loop',
          'outbox-relay',
          'saga-runner',
          'projection:order-list',
          'order-list loop',
        ]),
      );
      expect(names.filter((n) => n === 'outbox-relay')).toHaveLength(1); // the model's row, with the relay's heartbeat
      expect(h.components.find((c) => c.name === 'outbox-relay')!.heartbeat).toMatchObject({
        running: false,
      });
      expect(h.components.find((c) => c.name === 'saga-runner')!.status).toBe('warn'); // a compensation keeps failing
      expect(h.components.find((c) => c.name === 'order-list loop')!.heartbeat).toMatchObject({ cycles: 0 });
    });

    it('resumes a compensation_failed saga and rebuilds a projection, as the hook allows', async () => {
      expect((await action(`/sagas/${f.failedSagaId}/resume`, {}, { authorization: '' })).status).toBe(403);
      f.repair();
      const r = await action(`/sagas/${f.failedSagaId}/resume`, {});
      expect(await r.json()).toEqual({ action: 'saga.resume', result: 'compensated', by: 'alice@ops' });
      const again = await action(`/sagas/${f.failedSagaId}/resume`, {});
      expect(again.status).toBe(400); // no longer compensation_failed
      const b = await action('/projections/order-notes/rebuild', { mode: 'in-place' });
      expect(await b.json()).toEqual({ action: 'projection.rebuild', result: 'in-place', by: 'alice@ops' });
      expect((await f.projections.status('order-notes')).lagEvents).toBe(0);
      expect((await action('/projections/nope/rebuild', {})).status).toBe(404);
      expect((await action('/projections/order-notes/rebuild', { mode: 'drop' })).status).toBe(400);
      expect(audit.slice(-2).map((e) => `${e.who} ${e.action} ${e.outcome}`)).toEqual([
        'alice@ops saga.resume failed',
        'alice@ops projection.rebuild done',
      ]);
    });

    it('answers bad input with typed 4xx problem details, never a 500', async () => {
      const cases: [Promise<Response>, number][] = [
        [action('/outbox/dead-letters/replay', { ids: ['not-a-uuid'] }), 400],
        [action('/outbox/dead-letters/replay', { ids: [] }), 400],
        [action('/outbox/dead-letters/replay', { ids: [1, 2] }), 400],
        [action('/outbox/dead-letters/replay', { ids: f.deadIds, extra: 1 }), 400],
        [action('/outbox/dead-letters/replay', '{"ids": [', {}), 400],
        [action('/outbox/dead-letters/replay', '[1]'), 400],
        [action('/outbox/dead-letters/replay', '{"__proto__": {"ids": 1}}'), 400],
        [action('/outbox/dead-letters/replay', { ids: f.deadIds }, { 'content-type': 'text/plain' }), 400],
        [action('/outbox/dead-letters/replay', { ids: Array(101).fill(f.deadIds[0]) }), 400],
        [action('/outbox/dead-letters/replay', { ids: ['x'.repeat(20_000)] }), 413],
        [action('/nowhere', {}), 404],
        [fetch(`${base}/api/outbox/dead-letters?limit=-1`), 400],
        [fetch(`${base}/api/outbox/dead-letters?limit=1e9`), 400],
        [fetch(`${base}/api/outbox/dead-letters?afterSeq=abc`), 400],
        [fetch(`${base}/api/sagas?status=nope`), 400],
        [fetch(`${base}/api/sagas/%E0%A4%A`), 400],
        [fetch(`${base}/api/sagas/${'%00'}`), 400],
        [fetch(`${base}/api/sagas/0190f0aa-0000-7000-8000-000000000000`), 404],
        [fetch(`${base}/api/nowhere`), 404],
        [fetch(`${base}/api/map`, { method: 'DELETE' }), 404],
      ];
      for (const [pending, status] of cases) {
        const r = await pending;
        expect({ url: r.url, status: r.status }).toEqual({ url: r.url, status });
        // Fastify's router answers a path it cannot decode itself (400, its own JSON error) before any route
        const routerOwn = framework === 'fastify' && r.url.endsWith('%A');
        expect({ url: r.url, type: r.headers.get('content-type') }).toEqual({
          url: r.url,
          type: routerOwn ? 'application/json' : 'application/problem+json',
        });
        const problem = (await r.json()) as { status?: number; statusCode?: number };
        expect(problem.status ?? problem.statusCode).toBe(status);
      }
    });
  });
}
