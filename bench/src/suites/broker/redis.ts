/**
 * `broker` suite, Redis Streams cases (Redis on CQRS_REDIS_URL, default redis://127.0.0.1:6379):
 * - `raw`: ioredis `XADD` of the same entries the publisher writes (CloudEvents fields + JSON data), pipelined in
 *   batches of 100, 4 batches in flight; every reply awaited (Redis acknowledges each append);
 * - `relay`: `createRedisStreamsPublisher.publish` of the same events as the relay hands them over (decoded
 *   outbox rows), batches of 100, 4 in flight (one ordered Lua append per batch). The relay loop itself is left
 *   out: over the in-memory store its claim cost grows with the rows already published and would dominate;
 * - `latency-p50` / `latency-p99`: ~1,000 events/s (5 every 5 ms) through `publishEvents`, handled by
 *   `createRedisStreamsConsumer`; publish-to-handler-entry time.
 */
import { type AnyEvent, createInMemoryOutboxStore, jsonPayloadSerializer } from '@cqrs-ts/core';
import { decodeOutboxRecord, eventAttributes, type OutboxMessage } from '@cqrs-ts/core/spi';
import { createRedisStreamsConsumer, createRedisStreamsPublisher } from '@cqrs-ts/redis';
import { Redis } from 'ioredis';
import type { Metrics } from '../../lib/types.ts';
import type { BrokerCases } from '../broker.ts';
import { quantile, tick, tickEvents } from './common.ts';

const URL = process.env.CQRS_REDIS_URL ?? 'redis://127.0.0.1:6379';
const COUNT = 50_000;
const BATCH = 100;
const IN_FLIGHT = 4;

const streamName = (what: string) => `cqrs-bench:${what}:${process.pid}:${Date.now()}`;

async function reachable(): Promise<boolean> {
  const r = new Redis(URL, { maxRetriesPerRequest: 0, retryStrategy: () => null, lazyConnect: true });
  r.on('error', () => {});
  try {
    await r.connect();
    await r.ping();
    return true;
  } catch {
    return false;
  } finally {
    r.disconnect();
  }
}

async function raw(): Promise<Metrics> {
  const stream = streamName('raw');
  const redis = new Redis(URL);
  // The same fields the publisher writes: ce_* attributes, content-type, data bytes.
  const entries = tickEvents(COUNT, stream).map((e) => {
    const key = (e as AnyEvent & { key?: string }).key ?? null;
    const fields: (string | Buffer)[] = [];
    for (const [name, value] of Object.entries(eventAttributes(e, 'bench', 'application/json', key))) {
      fields.push(name === 'datacontenttype' ? 'content-type' : `ce_${name}`, value);
    }
    fields.push('data', Buffer.from(jsonPayloadSerializer.serialize(e)));
    return fields;
  });
  const send = async (from: number) => {
    const p = redis.pipeline();
    for (let i = from; i < Math.min(from + BATCH, entries.length); i++) p.xadd(stream, '*', ...entries[i]!);
    const replies = (await p.exec()) ?? [];
    for (const [error] of replies) if (error) throw error;
  };
  try {
    await send(0); // connect and warm up
    const start = performance.now();
    let next = BATCH;
    const lane = async () => {
      while (next < entries.length) {
        const from = next;
        next += BATCH;
        await send(from);
      }
    };
    await Promise.all(Array.from({ length: IN_FLIGHT }, lane));
    return { per_s: ((entries.length - BATCH) * 1000) / (performance.now() - start) };
  } finally {
    await redis.del(stream);
    redis.disconnect();
  }
}

async function relay(): Promise<Metrics> {
  const topic = streamName('relay');
  const publisher = createRedisStreamsPublisher({ url: URL });
  // What the relay hands a publisher: decoded outbox rows (CloudEvents attributes + JSON bytes).
  const store = createInMemoryOutboxStore({ source: 'bench' });
  const tx = store.begin();
  await store.append(tx as never, tickEvents(COUNT, topic));
  tx.commit();
  const messages: OutboxMessage[] = (
    await store.claimBatch({ relayId: 'bench', limit: COUNT, leaseMs: 60_000, now: Date.now() })
  ).map(decodeOutboxRecord);
  const redis = new Redis(URL);
  const send = async (from: number) => {
    const results = await publisher.publish(messages.slice(from, from + BATCH));
    for (const r of results) if (!r.ok) throw r.error;
  };
  try {
    await send(0); // connect and warm up
    const start = performance.now();
    let next = BATCH;
    const lane = async () => {
      while (next < messages.length) {
        const from = next;
        next += BATCH;
        await send(from);
      }
    };
    await Promise.all(Array.from({ length: IN_FLIGHT }, lane));
    const perS = ((messages.length - BATCH) * 1000) / (performance.now() - start);
    const appended = await redis.xlen(topic);
    if (appended !== COUNT) throw new Error(`publisher appended ${appended} entries, expected ${COUNT}`);
    return { per_s: perS };
  } finally {
    await redis.del(topic);
    redis.disconnect();
    await publisher.close();
  }
}

async function latency(percentile: number): Promise<Metrics> {
  const topic = streamName('latency');
  const publisher = createRedisStreamsPublisher({ url: URL });
  const samples: number[] = [];
  const consumer = createRedisStreamsConsumer({
    url: URL,
    streams: [topic],
    group: 'bench',
    processor: {
      name: 'bench-latency',
      handle: (e) => {
        samples.push(performance.timeOrigin + performance.now() - (e.payload as { t: number }).t);
      },
    },
  });
  await consumer.start();
  const total = 4000;
  const perTick = 5;
  try {
    for (let n = 0; n < total; n += perTick) {
      const batch: AnyEvent[] = [];
      for (let i = 0; i < perTick; i++) {
        const t = performance.timeOrigin + performance.now();
        batch.push(tick(n + i, topic, t, 10));
      }
      await publisher.publishEvents(batch);
      await new Promise((r) => setTimeout(r, 5));
    }
    const until = Date.now() + 30_000;
    while (samples.length < total && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
    return { ms: quantile(samples, percentile, 200) }; // skip the warm-up
  } finally {
    await consumer.stop();
    const redis = new Redis(URL);
    await redis.del(topic);
    redis.disconnect();
    await publisher.close();
  }
}

/** This broker's cases for the `broker` suite. */
export const cases: BrokerCases = {
  skipReason: async () => ((await reachable()) ? undefined : `${URL} is unreachable`),
  raw,
  relay,
  latency,
};
