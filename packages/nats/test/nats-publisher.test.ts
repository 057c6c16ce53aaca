import {
  type AnyEvent,
  type BrokerError,
  ConfigurationError,
  createInMemoryOutboxStore,
  createOutboxRelay,
  defineEvent,
  isCqrsError,
  runWithContext,
} from '@cqrs-ts/core';
import { eventAttributes, type OutboxMessage } from '@cqrs-ts/core/spi';
import { createNatsPublisher, ensureNatsStream, type NatsPublisher } from '@cqrs-ts/nats';
import { type JetStreamManager, jetstreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectTest, deleteStreams, natsAvailable, readStream, unique } from './support.ts';

const Ticked = defineEvent('nats.ticked', {
  topic: 'ticks',
  key: (p: { k: string; n: number }) => p.k,
}).withPayload<{ k: string; n: number }>();
const Loose = defineEvent('nats.loose', { topic: 'loose' }).withPayload<{ n: number }>();

const utf8 = new TextEncoder();
const TRACEPARENT = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';

/** An outbox message like the relay hands over, for `topic`/`key` and a JSON body. */
function message(topic: string, key: string | null, body: unknown, extra: Record<string, string> = {}) {
  const event = Ticked.create({ k: key ?? 'none', n: 0 }) as AnyEvent;
  const headers = { ...eventAttributes(event, 'test', 'application/json', key), ...extra };
  return {
    id: event.metadata.requestId,
    type: event.type,
    topic,
    key,
    headers,
    body: utf8.encode(JSON.stringify(body)),
    attempts: 0,
  } satisfies OutboxMessage;
}

describe.skipIf(!natsAvailable)('nats publisher', () => {
  let nc: NatsConnection;
  let jsm: JetStreamManager;
  const streams: string[] = [];
  const publishers: NatsPublisher[] = [];

  beforeAll(async () => {
    nc = await connectTest();
    jsm = await jetstreamManager(nc);
  });
  afterAll(async () => {
    for (const p of publishers) await p.close();
    await deleteStreams(jsm, ...streams);
    await nc.close();
  });

  /** A fresh stream capturing `<prefix>.>` and a publisher on that prefix. */
  async function setup(extra: { maxMsgSize?: number; timeoutMs?: number } = {}) {
    const name = unique('PUB');
    const prefix = name.toLowerCase();
    streams.push(name);
    await ensureNatsStream({
      connection: nc,
      name,
      subjects: [`${prefix}.>`],
      ...(extra.maxMsgSize !== undefined ? { maxMsgSize: extra.maxMsgSize } : {}),
    });
    const publisher = await createNatsPublisher({
      connection: nc,
      subjectPrefix: prefix,
      ...(extra.timeoutMs !== undefined ? { timeoutMs: extra.timeoutMs } : {}),
    });
    publishers.push(publisher);
    return { name, prefix, publisher };
  }

  it('publishes events with CloudEvents ce- headers, Nats-Msg-Id and the topic subject; re-publishes are dropped', async () => {
    const { name, prefix, publisher } = await setup();
    const events = runWithContext(
      { correlationId: 'corr-1', traceparent: TRACEPARENT, tenantId: 't1' },
      () => [Ticked.create({ k: 'a', n: 1 }), Ticked.create({ k: 'b', n: 2 })],
    );
    expect(await publisher.publishEvents(events)).toEqual([{ ok: true }, { ok: true }]);
    expect(await publisher.publishEvents(events)).toEqual([{ ok: true }, { ok: true }]); // duplicates
    const stored = await readStream(nc, name);
    expect(stored).toHaveLength(2);
    const [first] = stored;
    const h = first!.headers!;
    expect(first!.subject).toBe(`${prefix}.ticks`);
    expect(h.get('Nats-Msg-Id')).toBe(`cqrs-ts ${events[0]!.metadata.requestId}`);
    expect(h.get('ce-id')).toBe(events[0]!.metadata.requestId);
    expect(h.get('ce-specversion')).toBe('1.0');
    expect(h.get('ce-type')).toBe('nats.ticked');
    expect(h.get('ce-source')).toBe('cqrs-ts');
    expect(h.get('content-type')).toBe('application/json');
    expect(h.get('ce-correlationid')).toBe('corr-1');
    expect(h.get('ce-traceparent')).toBe(TRACEPARENT);
    expect(h.get('ce-tenantid')).toBe('t1');
    expect(h.get('ce-partitionkey')).toBe('a');
    expect(JSON.parse(new TextDecoder().decode(first!.data))).toEqual({ k: 'a', n: 1 });
    expect(publisher.health()).toMatchObject({ connected: true, inFlight: 0, published: 4, failed: 0 });
  });

  it('keeps per-key order over many in-flight messages and the outbox relay drains through it', async () => {
    const { name, publisher } = await setup();
    const store = createInMemoryOutboxStore();
    const next = new Map<string, number>();
    const events: AnyEvent[] = [];
    for (let i = 0; i < 600; i++) {
      const k = `k${i % 7}`;
      const n = next.get(k) ?? 0;
      next.set(k, n + 1);
      events.push(Ticked.create({ k, n }) as AnyEvent);
    }
    for (let i = 0; i < events.length; i += 100) {
      const tx = store.begin();
      await store.append(tx, events.slice(i, i + 100));
      tx.commit();
    }
    const relay = createOutboxRelay({ store, publisher, batchSize: 250 });
    let published = 0;
    for (;;) {
      const r = await relay.runOnce();
      if (r.claimed === 0) break;
      published += r.published;
    }
    expect(published).toBe(600);
    const stored = await readStream(nc, name);
    expect(stored).toHaveLength(600);
    const seen = new Map<string, number>();
    for (const m of stored) {
      const { k, n } = JSON.parse(new TextDecoder().decode(m.data)) as { k: string; n: number };
      expect(n).toBe(seen.get(k) ?? 0);
      seen.set(k, n + 1);
    }
  });

  it('partial failure: one result per message; after a failure the rest of its key is not sent', async () => {
    const { name, prefix, publisher } = await setup();
    const batch = [
      message('ticks', 'a', { i: 0 }),
      message('bad topic', 'a', { i: 1 }), // invalid subject: permanent
      message('ticks', 'a', { i: 2 }), // skipped: an earlier 'a' failed
      message('ticks', 'b', { i: 3 }),
      // header injection: the binding's percent-encoding turns CR LF into %0D%0A
      message('ticks', 'c', { i: 4 }, { requestedby: 'evil\r\nNats-Msg-Id: x' }),
      message('ticks', null, { i: 6 }),
    ];
    const results = await publisher.publish(batch);
    expect(results.map((r) => r.ok)).toEqual([true, false, false, true, true, true]);
    const reason = (i: number) => ((results[i] as { error: BrokerError }).error as BrokerError).reason;
    expect([reason(1), reason(2)]).toEqual(['invalid', 'skipped']);
    expect(results[1]).toMatchObject({ retryable: false });
    expect(results[2]).toMatchObject({ retryable: true });
    const stored = await readStream(nc, name);
    expect(stored.map((m) => JSON.parse(new TextDecoder().decode(m.data)).i)).toEqual([0, 3, 4, 6]);
    expect(stored[2]!.headers?.get('ce-requestedby')).toBe('evil%0D%0ANats-Msg-Id:%20x');
    expect(stored[2]!.headers?.get('Nats-Msg-Id')).toBe(`test ${batch[4]!.id}`);
    expect(stored.every((m) => m.subject === `${prefix}.ticks`)).toBe(true);
  });

  it('a subject no stream captures fails retryably (no responders); a silent responder times out', async () => {
    const { prefix } = await setup({ timeoutMs: 300 });
    const other = await createNatsPublisher({ connection: nc, subjectPrefix: `${prefix}x` });
    publishers.push(other);
    const [noStream] = await other.publish([message('ticks', 'a', {})]);
    expect(noStream).toMatchObject({ ok: false, retryable: true });
    expect((noStream as { error: BrokerError }).error.reason).toBe('unavailable');

    // A core NATS subscriber that never replies: JetStream is not involved, so no PubAck comes.
    const silent = nc.subscribe(`${prefix}silent.>`, { callback: () => {} });
    const mute = await createNatsPublisher({
      connection: nc,
      subjectPrefix: `${prefix}silent`,
      timeoutMs: 300,
    });
    publishers.push(mute);
    const [timedOut] = await mute.publish([message('ticks', 'a', {})]);
    silent.unsubscribe();
    expect(timedOut).toMatchObject({ ok: false, retryable: true });
    expect((timedOut as { error: BrokerError }).error.reason).toBe('timeout');
    expect(mute.health().inFlight).toBe(0);
  });

  it('health().lastError names the failure while publishing fails and is cleared once a message is published again', async () => {
    const name = unique('LASTERR');
    const prefix = name.toLowerCase();
    const publisher = await createNatsPublisher({ connection: nc, subjectPrefix: prefix });
    publishers.push(publisher);
    const [down] = await publisher.publish([message('ticks', 'a', {})]);
    expect(down).toMatchObject({ ok: false });
    expect(publisher.health().lastError).toMatch(/no responders/);

    streams.push(name);
    await ensureNatsStream({ connection: nc, name, subjects: [`${prefix}.>`] });
    expect(await publisher.publish([message('ticks', 'a', {})])).toEqual([{ ok: true }]);
    expect(publisher.health()).toMatchObject({ published: 1, failed: 1, lastError: undefined });
  });

  it('oversized messages fail permanently with typed errors; publishEvents rejects bad input before sending', async () => {
    const { name, publisher } = await setup({ maxMsgSize: 2000 });
    const results = await publisher.publish([
      message('ticks', 'a', { pad: 'x'.repeat(5000) }), // over the stream's max_msg_size
      message('ticks', 'b', { pad: 'x'.repeat(2 * 1024 * 1024) }), // over the server's max_payload
      message('ticks', 'c', { ok: 1 }),
    ]);
    expect(results.map((r) => r.ok)).toEqual([false, false, true]);
    for (const r of results.slice(0, 2)) {
      const error = (r as { error: unknown }).error;
      expect(isCqrsError(error, 'CQRS_BROKER')).toBe(true);
      expect((error as BrokerError).reason).toBe('too-large');
      expect(r).toMatchObject({ retryable: false });
    }
    await expect(
      publisher.publishEvents([{ kind: 'command', type: 'x' } as unknown as AnyEvent]),
    ).rejects.toThrow(/not an event/);
    const small = await createNatsPublisher({ connection: nc, maxPayloadBytes: 100 });
    publishers.push(small);
    await expect(
      small.publishEvents([Loose.create({ n: 1 }), Ticked.create({ k: 'x'.repeat(200), n: 1 })]),
    ).rejects.toMatchObject({
      code: 'CQRS_PAYLOAD_TOO_LARGE',
    });
    expect(await readStream(nc, name)).toHaveLength(1);
  });

  it('compresses big data (ce-contentencoding) and honours a pre-aborted signal', async () => {
    const { name, publisher: _ } = await setup();
    const prefix = name.toLowerCase();
    const gz = await createNatsPublisher({
      connection: nc,
      subjectPrefix: prefix,
      compression: { algorithm: 'gzip', thresholdBytes: 100 },
    });
    publishers.push(gz);
    const results = await gz.publish([
      message('ticks', 'a', { pad: 'y'.repeat(5000) }),
      message('ticks', 'b', { s: 1 }),
    ]);
    expect(results).toEqual([{ ok: true }, { ok: true }]);
    const [big, tiny] = await readStream(nc, name);
    expect(big!.headers!.get('ce-contentencoding')).toBe('gzip');
    expect(big!.data.byteLength).toBeLessThan(500);
    expect(tiny!.headers!.has('ce-contentencoding')).toBe(false);

    const aborted = AbortSignal.abort(new Error('stop'));
    const cancelled = await gz.publish([message('ticks', 'a', {}), message('ticks', null, {})], {
      signal: aborted,
    });
    expect(cancelled.map((r) => (r as { error: BrokerError }).error.reason)).toEqual([
      'cancelled',
      'cancelled',
    ]);
    expect(await readStream(nc, name)).toHaveLength(2);
  });

  it('rejects bad configuration with ConfigurationError', async () => {
    await expect(createNatsPublisher({ connection: nc, subjectPrefix: 'a b' })).rejects.toBeInstanceOf(
      ConfigurationError,
    );
    await expect(createNatsPublisher({ connection: nc, subjectPrefix: 'a.>' })).rejects.toBeInstanceOf(
      ConfigurationError,
    );
    await expect(createNatsPublisher({ connection: nc, timeoutMs: 0 })).rejects.toBeInstanceOf(
      ConfigurationError,
    );
    await expect(createNatsPublisher({ connection: nc, maxInFlight: 1.5 })).rejects.toBeInstanceOf(
      ConfigurationError,
    );
    await expect(createNatsPublisher({ connection: {} as NatsConnection })).rejects.toBeInstanceOf(
      ConfigurationError,
    );
    await expect(
      createNatsPublisher({ connection: nc, compression: { algorithm: 'zip' as 'gzip' } }),
    ).rejects.toBeInstanceOf(ConfigurationError);
    await expect(ensureNatsStream({ connection: nc, name: 'a.b', subjects: ['x.>'] })).rejects.toBeInstanceOf(
      ConfigurationError,
    );
    await expect(ensureNatsStream({ connection: nc, name: 'OK', subjects: ['>.x'] })).rejects.toBeInstanceOf(
      ConfigurationError,
    );
    await expect(ensureNatsStream({ connection: nc, name: 'OK', subjects: [] })).rejects.toBeInstanceOf(
      ConfigurationError,
    );
    const closed = await createNatsPublisher({ connection: nc });
    await closed.close();
    await expect(closed.publish([message('ticks', null, {})])).rejects.toMatchObject({ reason: 'closed' });
  });

  it('ensureNatsStream is idempotent and merges subjects', async () => {
    const name = unique('ENS');
    streams.push(name);
    const [a, b] = [`${name.toLowerCase()}a.>`, `${name.toLowerCase()}b.>`];
    const first = await ensureNatsStream({ connection: nc, name, subjects: [a] });
    const again = await ensureNatsStream({ connection: nc, name, subjects: [a] });
    const merged = await ensureNatsStream({ connection: nc, name, subjects: [b] });
    expect([first.created, again.created, again.updated, merged.updated]).toEqual([true, false, false, true]);
    expect(merged.subjects).toEqual([a, b]);
    await expect(
      ensureNatsStream({ connection: nc, name, subjects: [`${name}c.>`], onSubjectMismatch: 'fail' }),
    ).rejects.toBeInstanceOf(ConfigurationError);
  });
});
