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
  defineEvent,
  runWithContext,
} from '@cqrs-ts/core';
import {
  createKafkaConsumer,
  createKafkaPublisher,
  ensureKafkaTopics,
  fromKafkaHeaders,
  type KafkaConsumer,
  type KafkaPublisher,
  parseKafkaBrokers,
} from '@cqrs-ts/kafka';
import {
  type BrokerDeadLetter,
  type BrokerHarness,
  describeBrokerContract,
} from '@cqrs-ts/testing/contracts';
import { Admin, Consumer, Producer } from '@platformatic/kafka';
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

/** The broker contract over a fresh topic (and dead-letter topic) and consumer group per test. */
describeBrokerContract('kafka', async (): Promise<BrokerHarness | undefined> => {
  if (BROKERS.length === 0) return undefined;
  const raw = new Producer({ clientId: 'kt-contract-raw', bootstrapBrokers: BROKERS });
  const admin = new Admin({ clientId: 'kt-contract-admin', bootstrapBrokers: BROKERS });
  const partitions = 2;
  let topic = '';
  let groupId = '';
  let publisher: KafkaPublisher | undefined;
  let dead: BrokerDeadLetter[] = [];
  const endOffsets = async (t: string) => {
    const [listed] = await admin.listOffsets({
      topics: [
        {
          name: t,
          partitions: Array.from({ length: partitions }, (_, i) => ({ partitionIndex: i, timestamp: -1n })),
        },
      ],
    });
    return (listed?.partitions ?? []).reduce((n, p) => n + Number(p.offset), 0);
  };
  return {
    get topic() {
      return topic;
    },
    publisher: () => publisher!,
    consumer: (options) => createKafkaConsumer({ ...options, brokers: BROKERS, groupId, topics: [topic] }),
    async publishRaw(data, attributes = {}) {
      const headers = new Map<Buffer, Buffer>();
      for (const [k, v] of Object.entries(attributes)) {
        headers.set(Buffer.from(k === 'datacontenttype' ? 'content-type' : `ce_${k}`), Buffer.from(v));
      }
      await raw.send({ messages: [{ topic, value: Buffer.from(data), headers }] });
    },
    async deadLetters() {
      const total = await endOffsets(`${topic}.DLT`);
      if (total > dead.length) {
        dead = (await readTopic(`${topic}.DLT`, total)).map((r) => ({
          id: r.headers.ce_id || undefined,
          reason: r.headers.ce_deadletterreason ?? '',
          data: r.value,
        }));
      }
      return dead;
    },
    async backlog() {
      const [group] = await admin.listConsumerGroupOffsets({ groups: [groupId] });
      const committed = (group?.topics ?? [])
        .filter((t) => t.name === topic)
        .flatMap((t) => t.partitions)
        .reduce((n, p) => n + Math.max(0, Number(p.committedOffset)), 0);
      return (await endOffsets(topic)) - committed;
    },
    async reset() {
      await publisher?.close();
      topic = name('contract');
      groupId = name('contract-group');
      dead = [];
      await ensureKafkaTopics({
        brokers: BROKERS,
        topics: [topic],
        partitions,
        deadLetterTopic: (t) => `${t}.DLT`,
      });
      publisher = createKafkaPublisher({ brokers: BROKERS, clientId: 'kt-contract' });
    },
    async close() {
      await publisher?.close();
      await raw.close();
      await admin.close();
    },
  };
});

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

  it('publishes through the outbox relay with the CloudEvents Kafka binding (ce_ headers, key)', async () => {
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
