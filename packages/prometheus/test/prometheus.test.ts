/**
 * Scrapes a real `/metrics` over loopback HTTP after commands, a relay, a consumer (with a duplicate and a dead
 * letter) and a projection ran, and parses the text with a Prometheus text-format parser.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  type AnyEvent,
  createHealth,
  createInMemoryBroker,
  createInMemoryConsumer,
  createInMemoryEventStore,
  createInMemoryInboxGuard,
  createInMemoryOutboxStore,
  createInMemoryProjectionStore,
  createInMemorySagaStore,
  createInMemoryUnitOfWork,
  createMediator,
  createOutboxRelay,
  createProjectionRunner,
  type DeliveredMessage,
  defineCommand,
  defineDocumentProjection,
  defineEvent,
  handle,
  relayHealth,
  ValidationError,
} from '@cqrs-ts/core';
import { createPrometheusMetrics } from '@cqrs-ts/prometheus';
import parse from 'parse-prometheus-text-format';
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';

const Placed = defineEvent('shop.order-placed', { topic: 'orders' }).withPayload<{
  id: string;
  poison?: boolean;
}>();
const PlaceOrder = defineCommand('shop.place-order').withPayload<{ id: string }>().returns<string>();

/** Grammar of a sample line of the text exposition format: name, optional labels, value. */
const SAMPLE_LINE =
  /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{((?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\.)*",?)*)\})? (\S+)$/;

/** The value of the sample `name{labels}` (labels in any order); every line must be a comment or a valid sample. */
function sampleOf(text: string, name: string, labels: Record<string, string>): number | undefined {
  const want = JSON.stringify(Object.entries(labels).sort());
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = SAMPLE_LINE.exec(line);
    if (m === null) throw new Error(`not a sample line: ${line}`);
    if (m[1] !== name) continue;
    const got = [...(m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)].map((l) => [
      l[1],
      l[2],
    ]);
    if (JSON.stringify(got.sort()) === want) return Number(m[3]);
  }
  return undefined;
}

async function waitFor(condition: () => boolean, what: string): Promise<void> {
  const until = Date.now() + 10_000;
  while (!condition()) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

describe('@cqrs-ts/prometheus', () => {
  it('serves /metrics that a Prometheus text parser reads, with the counts of what ran', async () => {
    const registry = new Registry();
    const outbox = createInMemoryOutboxStore();
    const log = createInMemoryEventStore({ outbox });
    const broker = createInMemoryBroker();
    const relay = createOutboxRelay({ store: outbox, publisher: broker, pollIntervalMs: 20 });
    const projection = defineDocumentProjection<{ n: number }>({
      name: 'orders-count',
      events: [Placed],
      documentId: () => 'all',
      evolve: (doc) => ({ n: (doc?.n ?? 0) + 1 }),
    });
    const runner = createProjectionRunner({
      log,
      store: createInMemoryProjectionStore(),
      projections: [projection],
    });
    const health = createHealth({ components: [relayHealth(relay)] });
    const mediator = createMediator({
      handlers: [
        handle(PlaceOrder, async (c) => {
          if (c.payload.id === 'bad')
            throw new ValidationError('shop.place-order', [{ message: 'bad id', path: [], code: 'custom' }]);
          return c.payload.id;
        }),
      ],
    });
    const metrics = createPrometheusMetrics({
      registry,
      relays: { main: relay },
      projections: [{ runner, names: ['orders-count'] }],
      health,
    });
    const delivered: DeliveredMessage[] = [];
    broker.subscribe('orders', (m) => {
      delivered.push(m);
    });
    const consumer = createInMemoryConsumer({
      broker,
      topics: ['orders'],
      name: 'billing',
      inbox: createInMemoryInboxGuard(),
      handle: (e) => {
        if ((e.payload as { poison?: boolean }).poison)
          throw new ValidationError('shop.order-placed', [{ message: 'poison', path: [], code: 'custom' }]);
      },
    });
    const server = createServer((req, res) => {
      if (req.url !== '/metrics') return void res.writeHead(404).end();
      void registry
        .metrics()
        .then((text) => res.writeHead(200, { 'content-type': registry.contentType }).end(text));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/metrics`;
    try {
      await consumer.start();
      await mediator.send(PlaceOrder.create({ id: 'o-1' }));
      await mediator.send(PlaceOrder.create({ id: 'o-2' }));
      await expect(mediator.send(PlaceOrder.create({ id: 'bad' }))).rejects.toThrow();
      const events = [
        Placed.create({ id: 'o-1' }),
        Placed.create({ id: 'o-2' }),
        Placed.create({ id: 'x', poison: true }),
      ];
      await outbox.transaction((tx) => outbox.append(tx, events as AnyEvent[]));
      // before the relay runs: a backlog of 3, the projection 3 events behind
      const before = parse(await (await fetch(url)).text());
      const gauge = (families: typeof before, name: string) =>
        families.find((f) => f.name === name)?.metrics.map((m) => [m.labels, Number(m.value)]);
      expect(gauge(before, 'cqrs_outbox_backlog')).toEqual([[{ relay: 'main' }, 3]]);
      expect(gauge(before, 'cqrs_projection_lag_events')).toEqual([[{ projection: 'orders-count' }, 3]]);
      relay.start();
      await waitFor(() => consumer.health().handled + consumer.health().deadLettered === 3, 'three settled');
      await broker.publish([delivered[0]!]); // a redelivery: the inbox has it
      await waitFor(() => consumer.health().duplicates === 1, 'the duplicate');
      await runner.catchUp();

      const response = await fetch(url);
      expect(response.status).toBe(200);
      expect(response.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
      const text = await response.text();
      const families = parse(text);
      const family = (name: string) => {
        const f = families.find((x) => x.name === name);
        if (f === undefined) throw new Error(`${name} missing`);
        return f;
      };
      const value = (name: string, labels: Record<string, string>) =>
        Number(family(name).metrics.find((m) => JSON.stringify(m.labels) === JSON.stringify(labels))?.value);

      // The parser keeps one series per histogram family (it drops histogram labels): read those series off the
      // sample lines, each checked against the exposition grammar.
      expect(family('cqrs_dispatch_duration_seconds').type).toBe('HISTOGRAM');
      const dispatch = { message_type: 'shop.place-order', kind: 'command' };
      expect(sampleOf(text, 'cqrs_dispatch_duration_seconds_count', { ...dispatch, outcome: 'ok' })).toBe(2);
      expect(
        sampleOf(text, 'cqrs_dispatch_duration_seconds_bucket', { le: '+Inf', ...dispatch, outcome: 'ok' }),
      ).toBe(2);
      expect(sampleOf(text, 'cqrs_dispatch_duration_seconds_count', { ...dispatch, outcome: 'error' })).toBe(
        1,
      );
      expect(
        sampleOf(text, 'cqrs_dispatch_duration_seconds_sum', { ...dispatch, outcome: 'ok' }),
      ).toBeGreaterThan(0);

      expect(family('cqrs_messages_published_total').type).toBe('COUNTER');
      expect(
        value('cqrs_messages_published_total', { message_type: 'shop.order-placed', outcome: 'ok' }),
      ).toBe(3);
      const consumedBy = (disposition: string) =>
        value('cqrs_messages_consumed_total', {
          consumer: 'billing',
          message_type: 'shop.order-placed',
          disposition,
        });
      expect(consumedBy('handled')).toBe(2);
      expect(consumedBy('dead-letter')).toBe(1);
      expect(consumedBy('duplicate')).toBe(1);
      const byConsumer = { consumer: 'billing', message_type: 'shop.order-placed' };
      expect(value('cqrs_dead_letters_total', byConsumer)).toBe(1);
      expect(value('cqrs_inbox_duplicates_total', byConsumer)).toBe(1);
      expect(family('cqrs_consume_duration_seconds').type).toBe('HISTOGRAM');
      expect(sampleOf(text, 'cqrs_consume_duration_seconds_count', { ...byConsumer, outcome: 'ok' })).toBe(2);

      expect(value('cqrs_outbox_backlog', { relay: 'main' })).toBe(0);
      expect(value('cqrs_outbox_oldest_pending_age_seconds', { relay: 'main' })).toBe(0);
      expect(value('cqrs_projection_lag_events', { projection: 'orders-count' })).toBe(0);
      expect(value('cqrs_projection_lag_seconds', { projection: 'orders-count' })).toBe(0);
      expect(
        value('cqrs_projection_batches_total', { projection: 'orders-count', outcome: 'ok' }),
      ).toBeGreaterThan(0);
      expect(family('cqrs_health_status').type).toBe('GAUGE');
      expect(value('cqrs_health_status', { component: 'outbox-relay' })).toBe(1);
      // no ids in any label: only bounded names
      const labelValues = families.flatMap((f) => f.metrics.flatMap((m) => Object.values(m.labels ?? {})));
      expect(labelValues.some((v) => /o-1|o-2|[0-9a-f]{8}-[0-9a-f]{4}/.test(v))).toBe(false);
    } finally {
      metrics.close();
      health.close();
      await consumer.stop();
      await relay.stop();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });

  it('after close(), nothing is counted and the metrics are gone from the registry', async () => {
    const registry = new Registry();
    const metrics = createPrometheusMetrics({ registry });
    metrics.close();
    const mediator = createMediator({ handlers: [handle(PlaceOrder, async (c) => c.payload.id)] });
    await mediator.send(PlaceOrder.create({ id: 'o-1' }));
    expect(await registry.metrics()).not.toContain('cqrs_');
    expect(() => createPrometheusMetrics({} as never)).toThrow(/Registry/);
  });

  it('counts events a unit of work stages in its outbox, by type', async () => {
    const registry = new Registry();
    const metrics = createPrometheusMetrics({ registry });
    const unitOfWork = createInMemoryUnitOfWork();
    const mediator = createMediator({
      behaviors: [unitOfWork],
      handlers: [
        handle(PlaceOrder, async (c, ctx) => {
          ctx.emit(Placed, { id: c.payload.id });
          ctx.emit(Placed, { id: `${c.payload.id}-again` });
          return c.payload.id;
        }),
      ],
    });
    try {
      await mediator.send(PlaceOrder.create({ id: 'o-1' }));
      const text = await registry.metrics();
      expect(parse(text).find((f) => f.name === 'cqrs_outbox_appended_total')?.type).toBe('COUNTER');
      expect(sampleOf(text, 'cqrs_outbox_appended_total', { message_type: 'shop.order-placed' })).toBe(2);
    } finally {
      metrics.close();
    }
  });

  it('reports stored sagas per status from the saga store, and sagas the runner reports', async () => {
    const registry = new Registry();
    const store = createInMemorySagaStore();
    const at = Date.now();
    const record = (id: string) => ({
      id,
      name: 'checkout',
      definitionVersion: 1,
      context: '{}',
      owner: 'w-1',
      leaseMs: 1000,
      now: at,
      deadlineAt: null,
    });
    await store.create(record('s-1'));
    await store.create(record('s-2'));
    const sagas = { health: async () => ({ needsOperator: 1, retrying: 2, active: 0 }) };
    const metrics = createPrometheusMetrics({
      registry,
      sagaStores: { main: store },
      sagas: { main: sagas },
    });
    try {
      const text = await registry.metrics();
      expect(parse(text).find((f) => f.name === 'cqrs_saga_states')?.type).toBe('GAUGE');
      const states = await store.count!();
      for (const [status, n] of Object.entries(states))
        expect(sampleOf(text, 'cqrs_saga_states', { store: 'main', status }), status).toBe(n);
      expect(Object.values(states).reduce((a, b) => a + b, 0)).toBe(2);
      expect(sampleOf(text, 'cqrs_sagas', { runner: 'main', state: 'needs_operator' })).toBe(1);
      expect(sampleOf(text, 'cqrs_sagas', { runner: 'main', state: 'retrying' })).toBe(2);
    } finally {
      metrics.close();
    }
    expect(() => createPrometheusMetrics({ registry, sagaStores: { bare: {} } })).toThrow(/count/);
  });

  it('counts message types past maxMessageTypes as other', async () => {
    const registry = new Registry();
    const metrics = createPrometheusMetrics({ registry, maxMessageTypes: 1 });
    const Other = defineCommand('shop.other').withPayload<{ id: string }>().returns<string>();
    const mediator = createMediator({
      handlers: [handle(PlaceOrder, async (c) => c.payload.id), handle(Other, async (c) => c.payload.id)],
    });
    try {
      await mediator.send(PlaceOrder.create({ id: 'o-1' }));
      await mediator.send(Other.create({ id: 'o-1' }));
      const text = await registry.metrics();
      const count = (type: string) =>
        sampleOf(text, 'cqrs_dispatch_duration_seconds_count', {
          message_type: type,
          kind: 'command',
          outcome: 'ok',
        });
      expect([count('shop.place-order'), count('other'), count('shop.other')]).toEqual([1, 1, undefined]);
    } finally {
      metrics.close();
    }
  });
});
