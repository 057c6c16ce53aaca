/**
 * `broker` suite, NATS JetStream cases (see ../broker.ts).
 *
 * - `raw`: the official client's `js.publish` (persisted, PubAck awaited), 100 in flight, with the same subjects,
 *   data and headers (`ce-*`, `Nats-Msg-Id`) the cqrs-ts publisher sends.
 * - `relay`: the cqrs-ts outbox relay draining a pre-filled SQLite outbox through `createNatsPublisher`
 *   (batches of 1000 over 100 ordering keys; per-key chains, everything else pipelined), claims and marks
 *   included.
 * - `latency-p50` / `latency-p99`: 1,000 events/s published with `publishEvents` for 4 s, handled by
 *   `createNatsConsumer`; the time from publish to handler entry.
 */
import { createOutboxRelay } from '@cqrs-ts/core';
import { type OutboxMessage, toBindingHeaders } from '@cqrs-ts/core/spi';
import { createNatsConsumer, createNatsPublisher, ensureNatsStream } from '@cqrs-ts/nats';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect, headers, type NatsConnection } from '@nats-io/transport-node';
import type { Metrics } from '../../lib/types.ts';
import type { BrokerCases } from '../broker.ts';
import { openSqlite } from '../outbox/sqlite.ts';
import { outboxMessages, tick } from './common.ts';

const URL = process.env.CQRS_NATS_URL ?? '127.0.0.1:4222';
const COUNT = 20_000;
const RAW_IN_FLIGHT = 100;

async function withStream<T>(
  fn: (nc: NatsConnection, stream: string, prefix: string) => Promise<T>,
): Promise<T> {
  const nc = await connect({ servers: URL, timeout: 2000 });
  const stream = `BENCH_${process.pid}_${Math.floor(Math.random() * 1e6)}`;
  const prefix = stream.toLowerCase();
  await ensureNatsStream({ connection: nc, name: stream, subjects: [`${prefix}.>`], storage: 'file' });
  try {
    return await fn(nc, stream, prefix);
  } finally {
    const jsm = await jetstreamManager(nc);
    await jsm.streams.delete(stream).catch(() => undefined);
    await jsm.streams.delete(`${stream}_DLQ`).catch(() => undefined);
    await nc.close();
  }
}

async function raw(): Promise<Metrics> {
  const messages = await outboxMessages(COUNT + 200, 'bench');
  return withStream(async (nc, _stream, prefix) => {
    const js = (await jetstreamManager(nc)).jetstream();
    const send = (m: OutboxMessage) => {
      const h = headers();
      const bound = toBindingHeaders(m.headers, 'ce-');
      for (const k in bound) h.set(k, bound[k]!);
      return js.publish(`${prefix}.${m.topic}`, m.body, { msgID: m.id, headers: h });
    };
    // warm-up
    await Promise.all(messages.slice(0, 200).map(send));
    const start = performance.now();
    let next = 200;
    const worker = async () => {
      while (next < messages.length) await send(messages[next++]!);
    };
    await Promise.all(Array.from({ length: RAW_IN_FLIGHT }, worker));
    return { per_s: (messages.length - 200) / ((performance.now() - start) / 1000) };
  });
}

async function relay(): Promise<Metrics> {
  // SQLite (WAL file) rather than the in-memory store: its claim query is indexed, the in-memory store's claim
  // scans every row per key and would be what this case measures.
  const target = await openSqlite();
  try {
    return await withStream(async (nc, _stream, prefix) => {
      const publisher = await createNatsPublisher({ connection: nc, subjectPrefix: prefix });
      await target.seed(COUNT + 200);
      const warm = createOutboxRelay({ store: target.store, publisher, batchSize: 200 });
      await warm.runOnce();
      const r = createOutboxRelay({ store: target.store, publisher, batchSize: 1000 });
      const start = performance.now();
      let published = 0;
      for (;;) {
        const result = await r.runOnce();
        if (result.claimed === 0) break;
        if (result.failed > 0)
          throw new Error(`${result.failed} publishes failed: ${publisher.health().lastError}`);
        published += result.published;
      }
      const seconds = (performance.now() - start) / 1000;
      await publisher.close();
      if (published !== COUNT) throw new Error(`published ${published}, expected ${COUNT}`);
      return { per_s: published / seconds };
    });
  } finally {
    await target.close();
  }
}

async function latency(quantile: number): Promise<Metrics> {
  return withStream(async (nc, stream, prefix) => {
    const publisher = await createNatsPublisher({ connection: nc, subjectPrefix: prefix });
    const samples: number[] = [];
    const consumer = createNatsConsumer({
      connection: nc,
      stream,
      name: 'bench',
      concurrency: 32,
      deadLetter: { stream: false },
      handle: (e) => {
        const t = (e.payload as { t?: number }).t;
        if (t !== undefined) samples.push(performance.timeOrigin + performance.now() - t);
      },
    });
    await consumer.start();
    const RATE = 1000;
    const SECONDS = 4;
    const PER_TICK = 10; // 10 events every 10 ms
    let n = 0;
    const start = performance.now();
    const pending: Promise<unknown>[] = [];
    while (n < RATE * SECONDS) {
      const due = start + (n / RATE) * 1000;
      const wait = due - performance.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      const now = performance.timeOrigin + performance.now();
      const events = Array.from({ length: PER_TICK }, (_, i) => tick(n + i, 'bench', now));
      pending.push(publisher.publishEvents(events));
      n += PER_TICK;
    }
    await Promise.all(pending);
    const until = Date.now() + 10_000;
    while (samples.length < n && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
    await consumer.stop();
    await publisher.close();
    if (samples.length < n) throw new Error(`handled ${samples.length} of ${n}`);
    // drop the first second (connection and consumer warm-up)
    const steady = samples.slice(RATE).sort((a, b) => a - b);
    return { ms: steady[Math.min(steady.length - 1, Math.floor(quantile * steady.length))]! };
  });
}

async function reachable(): Promise<boolean> {
  try {
    const nc = await connect({ servers: URL, timeout: 2000, reconnect: false });
    await nc.close();
    return true;
  } catch {
    return false;
  }
}

/** This broker's cases for the `broker` suite. */
export const cases: BrokerCases = {
  skipReason: async () => ((await reachable()) ? undefined : 'nats-server is unreachable'),
  raw,
  relay,
  latency,
};
