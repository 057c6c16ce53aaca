/**
 * `broker` suite, RabbitMQ cases (CQRS_RABBITMQ_URL, default amqp://guest:guest@127.0.0.1:5672). Every case
 * publishes through a durable topic exchange to a durable classic queue, persistent (delivery mode 2), with
 * publisher confirms:
 * - `raw`: an amqplib confirm channel publishing the same messages the cqrs-ts publisher writes (CloudEvents
 *   `cloudEvents:` headers, content type, message id, timestamp, correlation id), a sliding window of 100
 *   unconfirmed messages, each confirm awaited;
 * - `relay`: `createRabbitPublisher().publish` of the same events as the relay hands them over (decoded outbox
 *   rows), batches of 100 like the relay's default, `LANES` batches in flight (the relay itself sends one batch at
 *   a time per relay instance; its claim/mark cost is the outbox suite's business);
 * - `latency-p50` / `latency-p99`: ~1,000 events/s (5 every 5 ms) through `publishEvents`, handled by
 *   `createRabbitConsumer` (quorum queue, concurrency 8); publish-to-handler-entry time.
 */
import type { AnyEvent } from '@cqrs-ts/core';
import { createRabbitConsumer, createRabbitPublisher } from '@cqrs-ts/rabbitmq';
import { connect } from 'amqplib';
import type { Metrics } from '../../lib/types.ts';
import type { BrokerCases } from '../broker.ts';
import { outboxMessages, quantile, tick } from './common.ts';

const URL = process.env.CQRS_RABBITMQ_URL ?? 'amqp://guest:guest@127.0.0.1:5672';
const COUNT = 30_000;
const WINDOW = 100;
const BATCH = 100;
const LANES = Number(process.env.CQRS_BENCH_RABBIT_LANES ?? 1);

const name = (what: string) => `cqrs-bench.${what}.${process.pid}.${Date.now()}`;

async function reachable(): Promise<boolean> {
  try {
    const c = await connect(URL, { timeout: 2000 });
    await c.close();
    return true;
  } catch {
    return false;
  }
}

/** A durable exchange bound to a durable classic queue; `drop` deletes both. */
async function route(what: string) {
  const exchange = name(`${what}.ex`);
  const queue = name(`${what}.q`);
  const conn = await connect(URL);
  const ch = await conn.createChannel();
  await ch.assertExchange(exchange, 'topic', { durable: true });
  await ch.assertQueue(queue, { durable: true, arguments: { 'x-queue-type': 'classic' } });
  await ch.bindQueue(queue, exchange, '#');
  return {
    exchange,
    queue,
    count: async () => (await ch.checkQueue(queue)).messageCount,
    async drop() {
      await ch.deleteQueue(queue).catch(() => {});
      await ch.deleteExchange(exchange).catch(() => {});
      await conn.close().catch(() => {});
    },
  };
}

async function raw(): Promise<Metrics> {
  const r = await route('raw');
  const messages = await outboxMessages(COUNT, 'bench.raw');
  const conn = await connect(URL);
  const ch = await conn.createConfirmChannel();
  // the same properties the cqrs-ts publisher sets (CloudEvents AMQP binding)
  const items = messages.map((m) => {
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(m.headers))
      if (k !== 'datacontenttype') headers[`cloudEvents:${k}`] = v;
    return {
      rk: m.topic,
      body: Buffer.from(m.body),
      id: m.id,
      headers,
      corr: m.headers.correlationid!,
      ts: Math.floor(Date.parse(m.headers.time!) / 1000),
    };
  });
  try {
    let start = 0;
    await new Promise<void>((resolve, reject) => {
      let sent = 0;
      let confirmed = 0;
      const warm = 1000;
      const pump = () => {
        while (sent < items.length && sent - confirmed < WINDOW) {
          const it = items[sent++]!;
          ch.publish(
            r.exchange,
            it.rk,
            it.body,
            {
              headers: { ...it.headers },
              contentType: 'application/json',
              deliveryMode: 2,
              mandatory: true,
              messageId: it.id,
              timestamp: it.ts,
              correlationId: it.corr,
              type: 'bench.rabbit-ticked',
              appId: 'bench',
            },
            (err) => {
              if (err) return reject(err);
              confirmed++;
              if (confirmed === warm) start = performance.now();
              if (confirmed === items.length) resolve();
              else pump();
            },
          );
        }
      };
      pump();
    });
    const perS = ((items.length - 1000) * 1000) / (performance.now() - start);
    const n = await r.count();
    if (n !== COUNT) throw new Error(`queue has ${n} messages, expected ${COUNT}`);
    return { per_s: perS };
  } finally {
    await conn.close().catch(() => {});
    await r.drop();
  }
}

async function relay(): Promise<Metrics> {
  const r = await route('relay');
  const messages = await outboxMessages(COUNT, 'bench.relay');
  const publisher = createRabbitPublisher({ url: URL, exchange: r.exchange });
  const send = async (from: number) => {
    const results = await publisher.publish(messages.slice(from, from + BATCH));
    for (const res of results) if (!res.ok) throw res.error;
  };
  try {
    for (let i = 0; i < 1000; i += BATCH) await send(i); // connect and warm up
    const start = performance.now();
    let next = 1000;
    const lane = async () => {
      while (next < messages.length) {
        const from = next;
        next += BATCH;
        await send(from);
      }
    };
    await Promise.all(Array.from({ length: LANES }, lane));
    const perS = ((messages.length - 1000) * 1000) / (performance.now() - start);
    const n = await r.count();
    if (n !== COUNT) throw new Error(`queue has ${n} messages, expected ${COUNT}`);
    return { per_s: perS };
  } finally {
    await publisher.close();
    await r.drop();
  }
}

async function latency(percentile: number): Promise<Metrics> {
  const exchange = name('lat.ex');
  const queue = name('lat.q');
  const publisher = createRabbitPublisher({ url: URL, exchange });
  const samples: number[] = [];
  const consumer = createRabbitConsumer({
    url: URL,
    exchange,
    queue,
    concurrency: 8,
    handle: (e) => {
      samples.push(performance.timeOrigin + performance.now() - (e.payload as { t: number }).t);
    },
  });
  await consumer.start();
  const total = 5000;
  const perTick = 5;
  try {
    for (let n = 0; n < total; n += perTick) {
      const batch: AnyEvent[] = [];
      for (let i = 0; i < perTick; i++) {
        const t = performance.timeOrigin + performance.now();
        batch.push(tick(n + i, 'bench.lat', t, 10));
      }
      void publisher.publishEvents(batch); // steady rate: do not wait for the confirms
      await new Promise((r) => setTimeout(r, 5));
    }
    const until = Date.now() + 30_000;
    while (samples.length < total && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
    return { ms: quantile(samples, percentile, 500) }; // skip the warm-up
  } finally {
    await consumer.stop();
    await publisher.close();
    const conn = await connect(URL);
    const ch = await conn.createChannel();
    for (const q of [queue, ...consumer.topology.retryQueues.map((x) => x.queue), `${queue}.dead`]) {
      await ch.deleteQueue(q).catch(() => {});
    }
    await ch.deleteExchange(exchange).catch(() => {});
    await conn.close().catch(() => {});
  }
}

/** This broker's cases for the `broker` suite. */
export const cases: BrokerCases = {
  skipReason: async () => ((await reachable()) ? undefined : `${URL} is unreachable`),
  raw,
  relay,
  latency,
};
