/**
 * `broker` suite, Kafka cases (run only when KAFKA_BROKERS is set; no broker runs on our machines):
 * - `raw`: the @platformatic/kafka producer (idempotent, acks all) sending the same records the publisher builds
 *   (key, CloudEvents headers, JSON data) in batches of 100, 4 batches in flight;
 * - `relay`: the cqrs-ts outbox relay (in-memory store, batches of 100) publishing through `createKafkaPublisher`;
 * - `latency-p50` / `latency-p99`: one event every 5 ms through `publishEvents`, handled by `createKafkaConsumer`.
 */
import {
  type AnyEvent,
  createInMemoryOutboxStore,
  createOutboxRelay,
  jsonPayloadSerializer,
} from '@cqrs-ts/core';
import { eventAttributes } from '@cqrs-ts/core/spi';
import {
  buildKafkaRecord,
  createKafkaConsumer,
  createKafkaPublisher,
  ensureKafkaTopics,
  parseKafkaBrokers,
} from '@cqrs-ts/kafka';
import { Producer } from '@platformatic/kafka';
import type { Metrics } from '../../lib/types.ts';
import type { BrokerCases } from '../broker.ts';
import { quantile, tick, tickEvents } from './common.ts';

const BROKERS = parseKafkaBrokers(process.env.KAFKA_BROKERS);
const COUNT = 20_000;
const BATCH = 100;
const IN_FLIGHT = 4;

async function freshTopic(what: string): Promise<string> {
  const topic = `cqrs-bench-${what}-${process.pid}-${Date.now()}`;
  await ensureKafkaTopics({ brokers: BROKERS, topics: [topic], partitions: 6 });
  return topic;
}

async function raw(): Promise<Metrics> {
  const topic = await freshTopic('raw');
  const producer = new Producer({
    clientId: 'bench-raw',
    bootstrapBrokers: BROKERS,
    idempotent: true,
    acks: -1,
  });
  const records = tickEvents(COUNT, topic).map((e, i) => {
    const key = (e as AnyEvent & { key?: string }).key ?? null;
    const m = {
      id: e.metadata.requestId,
      type: e.type,
      topic,
      key,
      headers: eventAttributes(e, 'bench', 'application/json', key),
      body: jsonPayloadSerializer.serialize(e),
      attempts: 0,
    };
    const r = buildKafkaRecord(m, topic, i % 6);
    delete r.partition; // the client hashes the key itself
    return r;
  });
  try {
    await producer.send({ messages: records.slice(0, BATCH) }); // connect and warm up
    const start = performance.now();
    let next = BATCH;
    const lane = async () => {
      while (next < records.length) {
        const from = next;
        next += BATCH;
        await producer.send({ messages: records.slice(from, from + BATCH) });
      }
    };
    await Promise.all(Array.from({ length: IN_FLIGHT }, lane));
    return { per_s: ((records.length - BATCH) * 1000) / (performance.now() - start) };
  } finally {
    await producer.close();
  }
}

async function relay(): Promise<Metrics> {
  const topic = await freshTopic('relay');
  const publisher = createKafkaPublisher({ brokers: BROKERS, clientId: 'bench-relay' });
  const store = createInMemoryOutboxStore({ source: 'bench' });
  const tx = store.begin();
  await store.append(tx as never, tickEvents(COUNT, topic));
  tx.commit();
  const relays = Array.from({ length: IN_FLIGHT }, () =>
    createOutboxRelay({ store, publisher, batchSize: BATCH }),
  );
  try {
    await relays[0]!.runOnce(); // connect and warm up
    const start = performance.now();
    let published = 0;
    await Promise.all(
      relays.map(async (r) => {
        for (;;) {
          const result = await r.runOnce();
          if (result.claimed === 0) return;
          published += result.published;
        }
      }),
    );
    return { per_s: (published * 1000) / (performance.now() - start) };
  } finally {
    await publisher.close();
  }
}

async function latency(percentile: number): Promise<Metrics> {
  const topic = await freshTopic('latency');
  const publisher = createKafkaPublisher({ brokers: BROKERS, clientId: 'bench-lat' });
  const samples: number[] = [];
  const consumer = createKafkaConsumer({
    brokers: BROKERS,
    groupId: `bench-lat-${process.pid}-${Date.now()}`,
    topics: [topic],
    startFrom: 'earliest',
    handle: (e) => {
      samples.push(performance.timeOrigin + performance.now() - (e.payload as { t: number }).t);
    },
  });
  await consumer.start();
  try {
    const total = 500;
    for (let n = 0; n < total; n++) {
      await publisher.publishEvents([tick(n, topic, performance.timeOrigin + performance.now(), 10)]);
      await new Promise((r) => setTimeout(r, 5));
    }
    const until = Date.now() + 30_000;
    while (samples.length < total && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
    return { ms: quantile(samples, percentile, 50) }; // skip the group-join warm-up
  } finally {
    await consumer.stop();
    await publisher.close();
  }
}

/** This broker's cases for the `broker` suite. */
export const cases: BrokerCases = {
  skipReason: async () => (BROKERS.length === 0 ? 'KAFKA_BROKERS is not set' : undefined),
  raw,
  relay,
  latency,
};
