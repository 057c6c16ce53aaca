/**
 * Integration tests against a real Kafka broker. No broker runs on the development machines, so they run only
 * when KAFKA_BROKERS is set (e.g. `KAFKA_BROKERS=127.0.0.1:9092`); otherwise they are skipped with a printed note
 * (also under CQRS_REQUIRE_SERVICES=1: Kafka is opt-in).
 */
import {
  type AnyEvent,
  createInMemoryOutboxStore,
  createMessageCatalog,
  createOutboxRelay,
  currentContext,
  defineEvent,
  runWithContext,
} from '@cqrs-ts/core';
import type { InboxGuard } from '@cqrs-ts/core/spi';
import {
  createKafkaConsumer,
  createKafkaPublisher,
  ensureKafkaTopics,
  fromKafkaHeaders,
  type KafkaConsumer,
  parseKafkaBrokers,
} from '@cqrs-ts/kafka';
import { Consumer, Producer } from '@platformatic/kafka';
import { afterAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { uniqueSuffix, waitFor } from '../../core/test/support/services.ts';

const BROKERS = parseKafkaBrokers(process.env.KAFKA_BROKERS);
if (BROKERS.length === 0) {
  console.warn('SKIP kafka integration tests: KAFKA_BROKERS is not set (no Kafka broker on this machine)');
}

const Placed = defineEvent('kt.order-placed', {
  schema: z.object({ orderId: z.string().min(1), n: z.number().int() }),
  key: (p) => p.orderId,
});
const catalog = createMessageCatalog([Placed]);
const TRACE = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';
let seq = 0;
const name = (what: string) => `cqrs-kt-${what}-${uniqueSuffix}-${++seq}`;

/** Reads every record of a topic from the start (raw client) until `count` arrived. */
async function readTopic(topic: string, count: number) {
  const consumer = new Consumer({
    clientId: 'kt-reader',
    groupId: name('reader'),
    bootstrapBrokers: BROKERS,
  });
  const stream = await consumer.consume({
    topics: [topic],
    mode: 'earliest',
    autocommit: false,
    maxWaitTime: 200,
  });
  const out: Array<{ key: string; value: Buffer; headers: Record<string, string> }> = [];
  try {
    for await (const m of stream) {
      const headers: Record<string, string> = {};
      for (const [k, v] of m.headerEntries) headers[k.toString()] = v?.toString() ?? '';
      out.push({ key: m.key?.toString() ?? '', value: m.value, headers });
      if (out.length >= count) break;
    }
  } finally {
    await stream.close().catch(() => undefined);
    await consumer.close(true);
  }
  return out;
}

describe.skipIf(BROKERS.length === 0)('kafka (KAFKA_BROKERS)', () => {
  const cleanup: Array<() => Promise<void>> = [];
  afterAll(async () => {
    for (const c of cleanup.reverse()) await c().catch(() => undefined);
  });

  async function setup(partitions = 3) {
    const topic = name('orders');
    await ensureKafkaTopics({
      brokers: BROKERS,
      topics: [topic],
      partitions,
      deadLetterTopic: (t) => `${t}.DLT`,
    });
    const publisher = createKafkaPublisher({ brokers: BROKERS, clientId: 'kt-pub', topic: () => topic });
    cleanup.push(() => publisher.close());
    return { topic, publisher };
  }

  function consumer(options: Partial<Parameters<typeof createKafkaConsumer>[0]> & { topic: string }) {
    const c: KafkaConsumer = createKafkaConsumer({
      brokers: BROKERS,
      groupId: options.groupId ?? name('group'),
      topics: [options.topic],
      catalog,
      maxAttempts: 3,
      backoff: { initialMs: 10, maxMs: 50 },
      handle: () => undefined,
      ...options,
    });
    cleanup.push(() => c.stop());
    return c;
  }

  it('round-trips through the outbox relay with CloudEvents headers and restores the context', async () => {
    const { topic, publisher } = await setup();
    const store = createInMemoryOutboxStore({ source: 'kt-svc' });
    const events = await runWithContext(
      { correlationId: 'corr-kt', traceparent: TRACE, tenantId: 't1' },
      () => ['a', 'b', 'a', 'c'].map((k, n) => Placed.create({ orderId: k, n })),
    );
    const tx = store.begin();
    await store.append(tx as never, events);
    tx.commit();
    const relay = createOutboxRelay({ store, publisher });
    expect((await relay.runOnce()).published).toBe(4);

    const raw = await readTopic(topic, 4);
    const first = raw.find((r) => r.headers.ce_id === events[0]!.metadata.requestId)!;
    expect(first.key).toBe('a');
    expect(first.headers).toMatchObject({
      'content-type': 'application/json',
      ce_specversion: '1.0',
      ce_type: 'kt.order-placed',
      ce_source: 'kt-svc',
      ce_correlationid: 'corr-kt',
      ce_traceparent: TRACE,
      ce_tenantid: 't1',
      ce_subject: 'a',
    });
    expect(fromKafkaHeaders(Object.entries(first.headers))).toMatchObject({
      datacontenttype: 'application/json',
    });

    const seen: Array<{ n: number; correlationId: string | undefined; traceparent: string | undefined }> = [];
    const c = consumer({
      topic,
      handle: (e) => {
        const ctx = currentContext();
        seen.push({
          n: (e.payload as { n: number }).n,
          correlationId: ctx?.correlationId,
          traceparent: ctx?.traceparent,
        });
      },
    });
    await c.start();
    await waitFor(() => seen.length === 4, 30_000, 'four events handled');
    expect(seen.every((s) => s.correlationId === 'corr-kt' && s.traceparent === TRACE)).toBe(true);
    // per-key order: a(0) before a(2)
    const order = seen.map((s) => s.n);
    expect(order.indexOf(0)).toBeLessThan(order.indexOf(2));
  });

  it('dead-letters a poison message after N attempts and a malformed one at once; the rest keeps flowing', async () => {
    const { topic, publisher } = await setup(1);
    const raw = new Producer({ clientId: 'kt-raw', bootstrapBrokers: BROKERS });
    cleanup.push(() => raw.close());
    await raw.send({ messages: [{ topic, key: Buffer.from('m'), value: Buffer.from('not an envelope') }] });
    await publisher.publishEvents([
      Placed.create({ orderId: 'poison', n: 1 }),
      Placed.create({ orderId: 'ok', n: 2 }),
    ]);
    const handled: string[] = [];
    const c = consumer({
      topic,
      handle: (e) => {
        const id = (e.payload as { orderId: string }).orderId;
        if (id === 'poison') throw new Error('always fails');
        handled.push(id);
      },
    });
    await c.start();
    await waitFor(() => handled.includes('ok') && c.stats().deadLettered === 2, 30_000, 'dead letters');
    const dead = await readTopic(`${topic}.DLT`, 2);
    const malformed = dead.find((d) => d.value.toString() === 'not an envelope')!;
    expect(malformed.headers.ce_deadletterreason).toMatch(/undecodable/);
    const poison = dead.find((d) => d.key === 'poison')!;
    expect(poison.headers.ce_deadletterreason).toMatch(/failed 3 times/);
    expect(poison.headers.ce_deadletterattempts).toBe('3');
    expect(poison.headers.ce_type).toBe('kt.order-placed');
  });

  it('with an inbox, a redelivered message has one effect', async () => {
    const { topic, publisher } = await setup(1);
    const marks = new Set<string>();
    const inbox: InboxGuard = {
      async once(id, consumerName, work) {
        const key = `${consumerName}:${id}`;
        if (marks.has(key)) return false;
        await work(undefined);
        marks.add(key);
        return true;
      },
    };
    const event = Placed.create({ orderId: 'dup', n: 1 });
    await publisher.publishEvents([event]);
    await publisher.publishEvents([event]); // the same event id twice (a relay retry after a lost ack)
    let effects = 0;
    const c = consumer({ topic, inbox, handle: () => void effects++ });
    await c.start();
    await waitFor(() => c.stats().handled === 2, 30_000, 'both deliveries');
    expect(effects).toBe(1);
  });

  it('a restarted consumer resumes from the committed offsets', async () => {
    const { topic, publisher } = await setup(2);
    const groupId = name('resume');
    const seen: number[] = [];
    const handle = (e: AnyEvent) => void seen.push((e.payload as { n: number }).n);
    await publisher.publishEvents([1, 2, 3].map((n) => Placed.create({ orderId: `k${n}`, n })));
    const first = consumer({ topic, groupId, handle });
    await first.start();
    await waitFor(() => seen.length === 3, 30_000, 'first three');
    await first.stop();
    await publisher.publishEvents([4, 5].map((n) => Placed.create({ orderId: `k${n}`, n })));
    const second = consumer({ topic, groupId, handle });
    await second.start();
    await waitFor(() => seen.length >= 5, 30_000, 'the next two');
    await new Promise((r) => setTimeout(r, 500));
    expect(seen.sort()).toEqual([1, 2, 3, 4, 5]); // nothing twice, nothing lost
  });
});
