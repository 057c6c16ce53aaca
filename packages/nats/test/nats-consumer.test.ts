import {
  type AmbientContext,
  type AnyEvent,
  ConfigurationError,
  consumerTransaction,
  createMessageCatalog,
  currentContext,
  defineEvent,
  runWithContext,
} from '@cqrs-ts/core';
import type { OutboxMessage } from '@cqrs-ts/core/spi';
import { createOutboxEncoder } from '@cqrs-ts/core/spi';
import {
  createNatsConsumer,
  createNatsPublisher,
  ensureNatsStream,
  type NatsConsumer,
  type NatsPublisher,
} from '@cqrs-ts/nats';
import { createPostgresInboxGuard, migrate } from '@cqrs-ts/postgres';
import { type JetStreamManager, jetstreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { headers as natsHeaders } from '@nats-io/transport-node';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PG_URL, service } from '../../core/test/support/services.ts';
import { connectTest, deleteStreams, natsAvailable, readStream, sleep, unique, until } from './support.ts';

const Ticked = defineEvent('natsc.ticked', {
  topic: 'ticks',
  key: (p: { k: string; n: number }) => p.k,
}).withPayload<{ k: string; n: number }>();

const TRACEPARENT = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';
const json = (data: Uint8Array) => JSON.parse(new TextDecoder().decode(data));

const pgAvailable = natsAvailable
  ? await service('postgres', async () => {
      const c = new pg.Client({ connectionString: PG_URL, connectionTimeoutMillis: 2000 });
      await c.connect();
      await c.end();
    })
  : false;

describe.skipIf(!natsAvailable)('nats consumer', () => {
  let nc: NatsConnection;
  let jsm: JetStreamManager;
  const streams: string[] = [];
  const closers: Array<{ close?: () => Promise<void>; stop?: () => Promise<void> }> = [];

  beforeAll(async () => {
    nc = await connectTest();
    jsm = await jetstreamManager(nc);
  });
  afterAll(async () => {
    for (const c of closers) await (c.stop ?? c.close)?.call(c);
    await deleteStreams(jsm, ...streams);
    await nc.close();
  });

  async function setup() {
    const stream = unique('CON');
    const prefix = stream.toLowerCase();
    streams.push(stream, `${stream}_DLQ`);
    await ensureNatsStream({ connection: nc, name: stream, subjects: [`${prefix}.>`] });
    const publisher = await createNatsPublisher({ connection: nc, subjectPrefix: prefix });
    closers.push(publisher);
    return { stream, prefix, publisher };
  }
  const consumer = (options: Parameters<typeof createNatsConsumer>[0]): NatsConsumer => {
    const c = createNatsConsumer({ connection: nc, backoff: { initialMs: 20, maxMs: 50 }, ...options });
    closers.push(c);
    return c;
  };
  const publishAll = async (publisher: NatsPublisher, events: readonly AnyEvent[]) => {
    const results = await publisher.publishEvents(events);
    expect(results.every((r) => r.ok)).toBe(true);
  };

  it('round trip: the handler runs in the producer context (correlation, causation, trace) and acks', async () => {
    const { stream, publisher } = await setup();
    const event = runWithContext(
      { correlationId: 'corr-42', traceparent: TRACEPARENT, tenantId: 'acme', requestedBy: 'u1' },
      () => Ticked.create({ k: 'a', n: 1 }),
    );
    await publishAll(publisher, [event]);
    const seen: Array<{ event: AnyEvent; ctx: AmbientContext | undefined; attempt: number }> = [];
    const c = consumer({
      stream,
      name: 'roundtrip',
      catalog: createMessageCatalog([Ticked]),
      handle: (e, h) => {
        seen.push({ event: e, ctx: currentContext(), attempt: h.deliveryAttempt });
      },
    });
    await c.start();
    await until(() => seen.length === 1 && c.health().inFlight === 0, 10_000, 'the event');
    const [{ event: got, ctx, attempt }] = seen as [(typeof seen)[0]];
    expect(got.type).toBe('natsc.ticked');
    expect(got.payload).toEqual({ k: 'a', n: 1 });
    expect(got.metadata.requestId).toBe(event.metadata.requestId);
    expect(ctx?.correlationId).toBe('corr-42');
    expect(ctx?.causationId).toBe(event.metadata.requestId);
    expect(ctx?.traceparent).toBe(TRACEPARENT);
    expect(ctx?.tenantId).toBe('acme');
    expect(ctx?.requestedBy).toBe('u1');
    expect(attempt).toBe(1);
    expect(c.health()).toMatchObject({ running: true, connected: true, received: 1, handled: 1 });
    await c.stop();
    expect(c.health().running).toBe(false);
    // acked: nothing left for the durable
    const info = await jsm.consumers.info(stream, 'roundtrip');
    expect(info.num_ack_pending + info.num_pending).toBe(0);
  });

  it('retries with backoff using the delivery count, then succeeds', async () => {
    const { stream, publisher } = await setup();
    await publishAll(publisher, [Ticked.create({ k: 'a', n: 1 })]);
    const attempts: number[] = [];
    const c = consumer({
      stream,
      name: 'retry',
      maxAttempts: 5,
      handle: (_e, h) => {
        attempts.push(h.deliveryAttempt);
        if (h.deliveryAttempt < 3) throw new Error('transient');
      },
    });
    await c.start();
    await until(() => c.health().handled === 1, 10_000, 'success on the third delivery');
    expect(attempts).toEqual([1, 2, 3]);
    expect(c.health()).toMatchObject({ retried: 2, deadLettered: 0 });
  });

  it('poison and malformed messages are dead-lettered with the reason while the messages behind keep flowing', async () => {
    const { stream, prefix, publisher } = await setup();
    const poison = Ticked.create({ k: 'p', n: 0 });
    const good = Array.from({ length: 20 }, (_, n) => Ticked.create({ k: `g${n % 4}`, n }));
    await publishAll(publisher, [poison, ...good]);
    const js = jsm.jetstream();
    await js.publish(`${prefix}.ticks`, new Uint8Array([0xff, 0x00, 0x13])); // no envelope at all
    const h = natsHeaders();
    for (const [k, v] of Object.entries({
      'ce-specversion': '1.0',
      'ce-id': 'bad-json-1',
      'ce-source': 'test',
      'ce-type': 'natsc.ticked',
      'content-type': 'application/json',
    }))
      h.set(k, v);
    await js.publish(`${prefix}.ticks`, new TextEncoder().encode('{not json'), { headers: h });
    const h2 = natsHeaders();
    for (const [k, v] of Object.entries({
      'ce-specversion': '1.0',
      'ce-id': 'u-1',
      'ce-source': 't',
      'ce-type': 'natsc.unknown',
    }))
      h2.set(k, v);
    await js.publish(`${prefix}.ticks`, new TextEncoder().encode('{}'), { headers: h2 });

    const handled: number[] = [];
    const c = consumer({
      stream,
      name: 'poison',
      maxAttempts: 3,
      catalog: createMessageCatalog([Ticked]),
      handle: (e) => {
        const p = e.payload as { k: string; n: number };
        if (p.k === 'p') throw new Error('poison pill\r\nwith a second line');
        handled.push(p.n);
      },
    });
    await c.start();
    await until(() => c.health().deadLettered === 4 && handled.length === 20, 15_000, 'dead letters');
    const dlq = await readStream(nc, `${stream}_DLQ`);
    expect(dlq).toHaveLength(4);
    const byReason = dlq.map((m) => ({
      id: m.headers?.get('ce-id') ?? '',
      reason: m.headers!.get('ce-deadletterreason'),
      attempts: m.headers!.get('ce-deadletterattempts'),
      source: m.headers!.get('ce-deadlettersource'),
      subject: m.subject,
    }));
    const poisoned = byReason.find((d) => d.id === poison.metadata.requestId)!;
    expect(poisoned.reason).toMatch(/failed 3 times: Error: poison pill with a second line/);
    expect(poisoned.attempts).toBe('3');
    expect(poisoned.source).toBe(`${prefix}.ticks`);
    expect(poisoned.subject).toBe(`cqrs-dlq.${stream}.poison`);
    const malformed = byReason.filter((d) => d.id !== poison.metadata.requestId);
    expect(malformed.map((d) => d.attempts)).toEqual(['1', '1', '1']);
    expect(malformed.every((d) => d.reason.startsWith('undecodable:'))).toBe(true);
    expect(malformed.find((d) => d.id === 'u-1')?.reason).toMatch(/Unknown message type/);
    // the original bytes are kept
    const poisonedMsg = dlq.find((m) => m.headers?.get('ce-id') === poison.metadata.requestId)!;
    expect(json(poisonedMsg.data)).toEqual({ k: 'p', n: 0 });
    expect([...handled].sort((a, b) => a - b)).toEqual(good.map((_, n) => n));
    const info = await jsm.consumers.info(stream, 'poison');
    expect(info.num_ack_pending + info.num_pending).toBe(0);
  });

  it('keeps same-key messages sequential under the concurrency limit', async () => {
    const { stream, publisher } = await setup();
    const events = Array.from({ length: 60 }, (_, n) => Ticked.create({ k: `k${n % 2}`, n: n }));
    await publishAll(publisher, events);
    let running = 0;
    let peak = 0;
    const runningKeys = new Set<string>();
    let overlap = false;
    const order = new Map<string, number[]>();
    const c = consumer({
      stream,
      name: 'limits',
      concurrency: 4,
      handle: async (e) => {
        const { k, n } = e.payload as { k: string; n: number };
        if (runningKeys.has(k)) overlap = true;
        runningKeys.add(k);
        running++;
        peak = Math.max(peak, running);
        await sleep(1 + (n % 3));
        order.set(k, [...(order.get(k) ?? []), n]);
        running--;
        runningKeys.delete(k);
      },
    });
    await c.start();
    await until(() => c.health().handled === 60, 15_000, 'all handled');
    expect(overlap).toBe(false);
    expect(peak).toBeLessThanOrEqual(2); // two keys: never more than one handler per key
    for (const [k, ns] of order) {
      expect(ns, k).toEqual([...ns].sort((a, b) => a - b));
      expect(ns).toHaveLength(30);
    }
  });

  it('graceful stop waits for the running handler and acks it; nothing is redelivered afterwards', async () => {
    const { stream, publisher } = await setup();
    await publishAll(publisher, [Ticked.create({ k: 'a', n: 1 })]);
    let entered = false;
    let finished = false;
    const c = consumer({
      stream,
      name: 'graceful',
      handle: async () => {
        entered = true;
        await sleep(500);
        finished = true;
      },
    });
    await c.start();
    await until(() => entered, 10_000, 'the handler to start');
    await c.stop();
    expect(finished).toBe(true);
    const info = await jsm.consumers.info(stream, 'graceful');
    expect(info.num_ack_pending + info.num_pending).toBe(0);
    let again = 0;
    const c2 = consumer({ stream, name: 'graceful', handle: () => void again++ });
    await c2.start();
    await sleep(300);
    await c2.stop();
    expect(again).toBe(0);
  });

  it.skipIf(!pgAvailable)('with the Postgres inbox a redelivered message has one effect', async () => {
    const { stream, prefix } = await setup();
    const pool = new pg.Pool({ connectionString: PG_URL, max: 4 });
    const sfx = stream.toLowerCase();
    const tables = { outbox: `nob_${sfx}`, inbox: `nib_${sfx}` };
    try {
      await migrate(pool, { tables });
      await pool.query(`CREATE TABLE nfx_${sfx} (event_id TEXT NOT NULL)`);
      const event = Ticked.create({ k: 'a', n: 1 });
      // The same event twice on the wire (a producer retry past the duplicate window): distinct Nats-Msg-Id.
      const raw = await createNatsPublisher({
        connection: nc,
        subjectPrefix: prefix,
        subject: () => `${prefix}.ticks`,
      });
      closers.push(raw);
      const [r] = createOutboxEncoder().encode([event], Date.now());
      const message: OutboxMessage = {
        id: r!.id,
        type: r!.type,
        topic: r!.topic,
        key: r!.key,
        headers: r!.headers,
        body: r!.payload,
        attempts: 0,
      };
      expect(await raw.publish([message])).toEqual([{ ok: true }]);
      expect(await raw.publish([{ ...message, id: `${message.id}-again` }])).toEqual([{ ok: true }]);
      const c = consumer({
        stream,
        name: 'inbox',
        inbox: createPostgresInboxGuard({ client: pool, tables }),
        handle: async (e) => {
          const tx = consumerTransaction<pg.PoolClient>()!;
          await tx.query(`INSERT INTO nfx_${sfx} VALUES ($1)`, [e.metadata.requestId]);
        },
      });
      await c.start();
      await until(() => c.health().handled + c.health().duplicates === 2, 10_000, 'both deliveries');
      expect(c.health()).toMatchObject({ handled: 1, duplicates: 1 });
      const rows = await pool.query(`SELECT event_id FROM nfx_${sfx}`);
      expect(rows.rows).toEqual([{ event_id: event.metadata.requestId }]);
      await c.stop();
    } finally {
      await pool.query(`DROP TABLE IF EXISTS ${tables.outbox}, ${tables.inbox}, nfx_${sfx}`).catch(() => {});
      await pool.end();
    }
  });

  it('rejects bad configuration with ConfigurationError', async () => {
    const handle = () => {};
    expect(() => createNatsConsumer({ stream: 'a.b', name: 'x', handle })).toThrow(ConfigurationError);
    expect(() => createNatsConsumer({ stream: 'S', name: 'x y', handle })).toThrow(ConfigurationError);
    expect(() => createNatsConsumer({ stream: 'S', name: 'x' })).toThrow(ConfigurationError);
    expect(() => createNatsConsumer({ stream: 'S', name: 'x', handle, maxAttempts: 0 })).toThrow(
      ConfigurationError,
    );
    expect(() => createNatsConsumer({ stream: 'S', name: 'x', handle, concurrency: 0 })).toThrow(
      ConfigurationError,
    );
    expect(() => createNatsConsumer({ stream: 'S', name: 'x', handle, ackWaitMs: 10 })).toThrow(
      ConfigurationError,
    );
    expect(() => createNatsConsumer({ stream: 'S', name: 'x', handle, filterSubjects: 'a b' })).toThrow(
      ConfigurationError,
    );
    expect(() =>
      createNatsConsumer({ stream: 'S', name: 'x', handle, deadLetter: { subject: 'dlq.>' } }),
    ).toThrow(ConfigurationError);
    // a durable that exists with another filter is refused, not silently changed
    const { stream, prefix } = await setup();
    const a = consumer({ stream, name: 'filtered', handle, filterSubjects: `${prefix}.a` });
    await a.start();
    await a.stop();
    const b = consumer({ stream, name: 'filtered', handle, filterSubjects: `${prefix}.b` });
    await expect(b.start()).rejects.toBeInstanceOf(ConfigurationError);
    await b.stop();
  });
});
