/**
 * Kafka logic that needs no broker: header mapping, record building, partitioning, offset bookkeeping, dead-letter
 * records, option validation, and the consumer loop driven through the structural client ports.
 */
import {
  type AnyEvent,
  createMessageCatalog,
  defineEvent,
  isCqrsError,
  jsonPayloadSerializer,
} from '@cqrs-ts/core';
import { eventAttributes, type OutboxMessage } from '@cqrs-ts/core/spi';
import {
  buildDeadLetterRecord,
  buildKafkaRecord,
  type ConsumedKafkaMessage,
  createCommitQueue,
  createKafkaConsumer,
  createKafkaPublisher,
  createOffsetTracker,
  defaultKafkaPartitioner,
  fromKafkaHeaders,
  type KafkaConsumerLike,
  type KafkaProducerLike,
  type KafkaRecordToProduce,
  laneOf,
  type OffsetCommit,
  parseKafkaBrokers,
  toKafkaHeaders,
} from '@cqrs-ts/kafka';
import { murmur2 } from '@platformatic/kafka';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { waitFor } from '../../core/test/support/services.ts';

const Shipped = defineEvent('shop.shipped', {
  schema: z.object({ orderId: z.string().min(1) }),
  key: (p) => p.orderId,
});
const catalog = createMessageCatalog([Shipped]);
const TRACE = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';

function outboxMessage(event: AnyEvent & { key?: string }, topic = 'shop'): OutboxMessage {
  const key = event.key ?? null;
  return {
    id: event.metadata.requestId,
    type: event.type,
    topic,
    key,
    headers: eventAttributes(event, 'svc', 'application/json', key),
    body: jsonPayloadSerializer.serialize(event),
    attempts: 0,
  };
}

const entries = (h: Map<Buffer, Buffer>) => [...h.entries()] as Array<[Buffer, Buffer]>;

describe('CloudEvents Kafka binding', () => {
  it('maps attributes to ce_ headers and content-type, and back', () => {
    const event = Shipped.create({ orderId: 'o1' }, { traceparent: TRACE, tenantId: 't1' } as never);
    const attrs = eventAttributes(event, 'svc', 'application/json', 'o1');
    const headers = toKafkaHeaders(attrs);
    const names = [...headers.keys()].map((k) => k.toString());
    expect(names).toContain('content-type');
    expect(names).toContain('ce_id');
    expect(names).toContain('ce_specversion');
    expect(names).not.toContain('ce_datacontenttype');
    expect(fromKafkaHeaders(entries(headers))).toEqual(attrs);
  });

  it('ignores foreign headers, null values and unsafe names; matches names case-insensitively', () => {
    const a = fromKafkaHeaders([
      [Buffer.from('CE_ID'), Buffer.from('x')],
      [Buffer.from('traceparent'), Buffer.from('no')],
      [Buffer.from('ce_type'), null],
      [null, Buffer.from('v')],
      [Buffer.from('ce___proto__'), Buffer.from('polluted')],
      [Buffer.from('ce_'), Buffer.from('empty')],
      [Buffer.from('Content-Type'), Buffer.from('application/json')],
    ]);
    expect(a).toEqual({ id: 'x', datacontenttype: 'application/json' });
    expect(Object.getPrototypeOf(a)).toBe(Object.prototype);
  });

  it('builds the record: key = ordering key, value = data without copying, headers', () => {
    const m = outboxMessage(Shipped.create({ orderId: 'o-7' }));
    const r = buildKafkaRecord(m, 'shop', 3);
    expect(r.topic).toBe('shop');
    expect(r.partition).toBe(3);
    expect(r.key?.toString()).toBe('o-7');
    expect(r.value.buffer).toBe(m.body.buffer);
    expect(r.value.toString()).toBe('{"orderId":"o-7"}');
    expect(fromKafkaHeaders(entries(r.headers))).toEqual(m.headers);
    const keyless = buildKafkaRecord({ ...m, key: null }, 'shop', 0);
    expect(keyless.key).toBeUndefined();
  });

  it("partitions keys like Kafka's Java client (murmur2, positive, modulo)", () => {
    // Kafka's UtilsTest.testMurmur2 vectors, through the client's murmur2
    expect(murmur2(Buffer.from('21'))).toBe(-973932308);
    expect(murmur2(Buffer.from('foobar'))).toBe(-790332482);
    expect(murmur2(Buffer.from('abc'))).toBe(479470107);
    expect(defaultKafkaPartitioner(Buffer.from('21'), 1000, {} as OutboxMessage)).toBe(
      (-973932308 & 0x7fffffff) % 1000,
    );
    // the same key always lands on the same partition
    const p = (k: string) => defaultKafkaPartitioner(Buffer.from(k), 12, {} as OutboxMessage);
    expect(p('order-1')).toBe(p('order-1'));
    for (let i = 0; i < 200; i++) expect(p(`k${i}`)).toBeGreaterThanOrEqual(0);
  });

  it('builds dead-letter records keeping key, value and raw headers, adding the reason', () => {
    const record: ConsumedKafkaMessage = {
      topic: 'shop',
      partition: 2,
      offset: 41n,
      leaderEpoch: 0,
      key: Buffer.from('o1'),
      value: Buffer.from([0xff, 0x00]),
      headerEntries: [
        [Buffer.from('x-custom'), Buffer.from('kept')],
        [Buffer.from('ce_deadletterreason'), Buffer.from('old')],
        [Buffer.from('ce_id'), null],
      ],
    };
    const dl = buildDeadLetterRecord(record, {
      topic: 'shop.DLT',
      reason: 'failed 5 times: boom',
      attempts: 5,
    });
    expect(dl.topic).toBe('shop.DLT');
    expect(dl.partition).toBeUndefined();
    expect(dl.key?.toString()).toBe('o1');
    expect(dl.value).toBe(record.value);
    const h = Object.fromEntries([...dl.headers].map(([k, v]) => [k.toString(), v.toString()]));
    expect(h).toEqual({
      'x-custom': 'kept',
      ce_id: '',
      ce_deadletterreason: 'failed 5 times: boom',
      ce_deadlettersource: 'shop',
      ce_deadletterattempts: '5',
      ce_deadletterpartition: '2',
      ce_deadletteroffset: '41',
    });
    const noKey = buildDeadLetterRecord(
      { ...record, key: null, value: null },
      { topic: 't', reason: 'r', attempts: 1 },
    );
    expect(noKey.key).toBeUndefined();
    expect(noKey.value.length).toBe(0);
  });

  it('chooses lanes per key (per topic) or per partition', () => {
    const base = { topic: 't', partition: 1, offset: 0n, leaderEpoch: 0, headerEntries: [] };
    expect(laneOf({ ...base, key: Buffer.from('a') }, 'key')).not.toBe(
      laneOf({ ...base, key: Buffer.from('b') }, 'key'),
    );
    expect(laneOf({ ...base, key: Buffer.from('a') }, 'key')).toBe(
      laneOf({ ...base, partition: 1, offset: 5n, key: Buffer.from('a') }, 'key'),
    );
    expect(laneOf({ ...base, key: Buffer.from('a') }, 'partition')).toBe(
      laneOf({ ...base, key: Buffer.from('b') }, 'partition'),
    );
    expect(laneOf({ ...base, key: null }, 'key')).toBe(
      laneOf({ ...base, key: Buffer.from('x') }, 'partition'),
    );
  });
});

describe('offset tracker', () => {
  it('commits only the highest contiguous finished offset, never past an unfinished one', () => {
    const t = createOffsetTracker();
    for (const o of [10n, 11n, 12n, 13n]) t.track('a', 0, o, 7);
    expect(t.finish('a', 0, 12n)).toBeUndefined(); // 10 and 11 still running
    expect(t.finish('a', 0, 11n)).toBeUndefined();
    expect(t.position('a', 0)).toBe(10n);
    expect(t.finish('a', 0, 10n)).toEqual({ topic: 'a', partition: 0, offset: 13n, leaderEpoch: 7 });
    expect(t.finish('a', 0, 13n)?.offset).toBe(14n);
    expect(t.pending).toBe(0);
  });

  it('skips gaps (compacted offsets, transaction markers) and keeps partitions apart', () => {
    const t = createOffsetTracker();
    t.track('a', 0, 5n);
    t.track('a', 0, 9n); // 6..8 never delivered
    t.track('a', 1, 100n);
    expect(t.finish('a', 0, 5n)?.offset).toBe(9n);
    expect(t.finish('a', 1, 100n)?.offset).toBe(101n);
    expect(t.finish('a', 0, 9n)?.offset).toBe(10n);
  });

  it('tracks redeliveries separately and never moves backwards', () => {
    const t = createOffsetTracker();
    t.track('a', 0, 1n);
    t.track('a', 0, 2n);
    expect(t.finish('a', 0, 1n)?.offset).toBe(2n);
    t.track('a', 0, 1n); // rebalance: redelivered from the committed offset
    t.track('a', 0, 2n);
    expect(t.finish('a', 0, 2n)).toBeUndefined(); // the other copy of 2 and the redelivered 1 are unfinished
    expect(t.finish('a', 0, 1n)).toBeUndefined(); // position 2 was already returned
    expect(t.finish('a', 0, 2n)?.offset).toBe(3n);
    expect(t.finish('a', 0, 2n)).toBeUndefined(); // unknown now
    expect(t.finish('zz', 0, 1n)).toBeUndefined();
  });

  it('forgets revoked partitions', () => {
    const t = createOffsetTracker();
    t.track('a', 0, 1n);
    t.track('a', 0, 2n);
    t.forget('a', 0);
    expect(t.pending).toBe(0);
    expect(t.finish('a', 0, 1n)).toBeUndefined();
    expect(t.position('a', 0)).toBeUndefined();
  });
});

describe('commit queue', () => {
  const c = (partition: number, offset: bigint): OffsetCommit => ({
    topic: 't',
    partition,
    offset,
    leaderEpoch: 0,
  });

  it('runs one commit at a time and merges what arrives meanwhile (highest per partition)', async () => {
    const calls: OffsetCommit[][] = [];
    let release: () => void = () => undefined;
    const q = createCommitQueue(
      (offsets) => {
        calls.push(offsets);
        return new Promise<void>((r) => {
          release = r;
        });
      },
      () => undefined,
    );
    q.add(c(0, 5n));
    q.add(c(0, 9n));
    q.add(c(1, 3n));
    q.add(c(0, 7n)); // lower: ignored
    expect(calls).toEqual([[c(0, 5n)]]);
    release();
    await waitFor(() => calls.length === 2);
    expect(calls[1]).toEqual([c(0, 9n), c(1, 3n)]);
    release();
    await q.flush();
    expect(q.queued).toBe(0);
  });

  it('keeps failed offsets for the next attempt without overwriting newer ones', async () => {
    const calls: OffsetCommit[][] = [];
    const errors: unknown[] = [];
    let fail = true;
    const q = createCommitQueue(
      async (offsets) => {
        calls.push(offsets);
        if (fail) throw new Error('coordinator moved');
      },
      (e) => errors.push(e),
    );
    q.add(c(0, 5n)); // fails
    await q.flush(); // waits for it, tries once more: fails again
    expect(errors).toHaveLength(2);
    expect(q.queued).toBe(1);
    fail = false;
    q.add(c(0, 8n));
    await q.flush();
    expect(calls.at(-1)).toEqual([c(0, 8n)]);
    expect(q.queued).toBe(0);
  });
});

describe('option validation', () => {
  const expectConfig = (fn: () => unknown, re: RegExp) => {
    let error: unknown;
    try {
      fn();
    } catch (e) {
      error = e;
    }
    expect(isCqrsError(error) && error.code).toBe('CQRS_CONFIGURATION');
    expect((error as Error).message).toMatch(re);
  };

  it('rejects bad publisher options', () => {
    expectConfig(() => createKafkaPublisher(undefined as never), /options are required/);
    expectConfig(() => createKafkaPublisher({}), /give brokers/);
    expectConfig(() => createKafkaPublisher({ brokers: ['nohost'] }), /not host:port/);
    expectConfig(() => createKafkaPublisher({ brokers: ['h:1'], acks: 'some' as never }), /acks/);
    expectConfig(
      () => createKafkaPublisher({ brokers: ['h:1'], acks: 'leader' }),
      /idempotent producer needs acks all/,
    );
    expectConfig(
      () => createKafkaPublisher({ brokers: ['h:1'], compression: 'rar' as never }),
      /compression/,
    );
    expectConfig(() => createKafkaPublisher({ brokers: ['h:1'], maxBatchSize: 0 }), /maxBatchSize/);
  });

  it('rejects bad consumer options', () => {
    const base = { brokers: ['h:1'], groupId: 'g', topics: ['t'], handle: () => undefined };
    expectConfig(() => createKafkaConsumer({ ...base, groupId: '' }), /groupId/);
    expectConfig(() => createKafkaConsumer({ ...base, topics: [] }), /topics/);
    expectConfig(() => createKafkaConsumer({ ...base, topics: ['bad topic'] }), /invalid topic/);
    expectConfig(() => createKafkaConsumer({ ...base, concurrency: 0 }), /concurrency/);
    expectConfig(() => createKafkaConsumer({ ...base, prefetch: 1, concurrency: 4 }), /prefetch/);
    expectConfig(() => createKafkaConsumer({ ...base, ordering: 'none' as never }), /ordering/);
    expectConfig(() => createKafkaConsumer({ ...base, startFrom: 'middle' as never }), /startFrom/);
    expectConfig(() => createKafkaConsumer({ ...base, deadLetterTopic: (t) => t }), /dead-letter topic/);
    expectConfig(() => createKafkaConsumer({ ...base, brokers: undefined } as never), /give brokers/);
    expectConfig(() => createKafkaConsumer({ ...base, maxAttempts: 0 }), /maxAttempts/);
    expectConfig(
      () => createKafkaConsumer({ groupId: 'g', topics: ['t'], brokers: ['h:1'] }),
      /mediator or a handle/,
    );
  });

  it('parses KAFKA_BROKERS lists', () => {
    expect(parseKafkaBrokers(' a:1, b:2 ,,')).toEqual(['a:1', 'b:2']);
    expect(parseKafkaBrokers(undefined)).toEqual([]);
  });
});

/**
 * A producer following the client's documented contract: `send` resolves with the written offsets, or
 * rejects with `error.produced.offsets` listing the partitions whose request succeeded. It records calls.
 */
function recordingProducer(options: { partitions?: number; failPartitions?: number[] } = {}) {
  const sent: KafkaRecordToProduce[][] = [];
  const producer: KafkaProducerLike = {
    async metadata({ topics }) {
      return { topics: new Map(topics.map((t) => [t, { partitionsCount: options.partitions ?? 4 }])) };
    },
    async send({ messages }) {
      sent.push(messages);
      const partitions = [...new Set(messages.map((m) => m.partition ?? 0))];
      const failed = partitions.filter((p) => options.failPartitions?.includes(p));
      const offsets = partitions
        .filter((p) => !failed.includes(p))
        .map((p) => ({ topic: messages[0]!.topic, partition: p, offset: 0n }));
      if (failed.length > 0)
        throw Object.assign(new Error('NOT_LEADER_OR_FOLLOWER'), { produced: { offsets } });
      return { offsets };
    },
    async close() {},
  };
  return { producer, sent };
}

describe('publisher logic (through the producer port)', () => {
  it('sends one batch per call with keys on their partitions and reports per-message results', async () => {
    const { producer, sent } = recordingProducer({ partitions: 4 });
    const publisher = createKafkaPublisher({ producer, idempotent: true });
    expect(publisher.capabilities).toEqual({ preservesKeyOrder: true, maxBatchSize: 1000 });
    const batch = ['a', 'b', 'a', 'c'].map((k) => outboxMessage(Shipped.create({ orderId: k })));
    const results = await publisher.publish(batch);
    expect(results).toEqual([{ ok: true }, { ok: true }, { ok: true }, { ok: true }]);
    expect(sent).toHaveLength(1);
    const records = sent[0]!;
    expect(records.map((r) => r.key?.toString())).toEqual(['a', 'b', 'a', 'c']);
    expect(records[0]!.partition).toBe(records[2]!.partition);
    expect(records[0]!.partition).toBe(defaultKafkaPartitioner(Buffer.from('a'), 4, batch[0]!));
  });

  it('marks only the messages of failed partitions as failed', async () => {
    const keys = ['a', 'b', 'c', 'd', 'e', 'f'];
    const failing = defaultKafkaPartitioner(Buffer.from('a'), 4, {} as OutboxMessage);
    const { producer } = recordingProducer({ partitions: 4, failPartitions: [failing] });
    const publisher = createKafkaPublisher({ producer });
    expect(publisher.capabilities.preservesKeyOrder).toBe(false); // your own producer: declare idempotent
    const batch = keys.map((k) => outboxMessage(Shipped.create({ orderId: k })));
    const results = await publisher.publish(batch);
    keys.forEach((k, i) => {
      const p = defaultKafkaPartitioner(Buffer.from(k), 4, batch[i]!);
      expect(results[i]!.ok).toBe(p !== failing);
    });
    const failed = results.find((r) => !r.ok) as { error: unknown };
    expect(isCqrsError(failed.error) && failed.error.code).toBe('CQRS_BROKER');
  });

  it('spreads keyless messages round-robin, honours a custom topic and partitioner, validates topics', async () => {
    const { producer, sent } = recordingProducer({ partitions: 3 });
    const publisher = createKafkaPublisher({
      producer,
      topic: (m) => `events.${m.type}`,
      partitioner: (key) => (key.toString() === 'x' ? 2 : 0),
    });
    const keyless = [1, 2, 3, 4].map(() => ({
      ...outboxMessage(Shipped.create({ orderId: 'z' })),
      key: null,
    }));
    await publisher.publish([...keyless, outboxMessage(Shipped.create({ orderId: 'x' }))]);
    expect(sent[0]!.map((r) => r.partition)).toEqual([0, 1, 2, 0, 2]);
    expect(sent[0]![0]!.topic).toBe('events.shop.shipped');
    const bad = createKafkaPublisher({ producer, topic: () => 'no spaces allowed' });
    await expect(bad.publish([keyless[0]!])).rejects.toThrowError(/invalid topic/);
    const wild = createKafkaPublisher({ producer, partitioner: () => 99 });
    await expect(wild.publish([outboxMessage(Shipped.create({ orderId: 'q' }))])).rejects.toThrowError(
      /partitioner returned 99/,
    );
  });

  it('gives up waiting when the signal aborts (the relay stopping)', async () => {
    const producer: KafkaProducerLike = {
      metadata: () => new Promise(() => undefined), // a cluster that never answers
      send: () => new Promise(() => undefined),
      close: async () => undefined,
    };
    const publisher = createKafkaPublisher({ producer });
    const ac = new AbortController();
    const pending = publisher.publish([outboxMessage(Shipped.create({ orderId: 'o' }))], {
      signal: ac.signal,
    });
    ac.abort();
    await expect(pending).rejects.toThrowError(/publish aborted/);
    await expect(
      publisher.publish([outboxMessage(Shipped.create({ orderId: 'o' }))], { signal: ac.signal }),
    ).rejects.toThrow();
  });

  it('publishes events directly with the outbox encoding and refuses non-events', async () => {
    const { producer, sent } = recordingProducer();
    const publisher = createKafkaPublisher({ producer, events: { source: 'orders-svc' } });
    const event = Shipped.create({ orderId: 'o9' });
    expect(await publisher.publishEvents([event])).toEqual([{ ok: true }]);
    const r = sent[0]![0]!;
    expect(r.topic).toBe('shop.shipped');
    expect(r.key?.toString()).toBe('o9');
    const attrs = fromKafkaHeaders(entries(r.headers));
    expect(attrs).toMatchObject({ id: event.metadata.requestId, source: 'orders-svc', type: 'shop.shipped' });
    await expect(publisher.publishEvents([{ kind: 'command' } as never])).rejects.toThrowError(
      /not an event/,
    );
    await publisher.close();
    await expect(publisher.publish([outboxMessage(event)])).rejects.toThrowError(/closed/);
  });
});

/** A consumer client over an in-process list of records (the messages stream contract: async iterable). */
function recordsClient(records: ConsumedKafkaMessage[]) {
  const commits: Array<{ partition: number; offset: bigint }> = [];
  let closeStream: () => void = () => undefined;
  const client: KafkaConsumerLike = {
    async consume() {
      let closed = false;
      const done = new Promise<void>((r) => {
        closeStream = () => {
          closed = true;
          r();
        };
      });
      return {
        async *[Symbol.asyncIterator]() {
          for (const r of records) {
            if (closed) return;
            yield r;
          }
          await done;
        },
        async close() {
          closeStream();
        },
      };
    },
    async commit({ offsets }) {
      for (const o of offsets) commits.push({ partition: o.partition, offset: o.offset });
    },
    async close() {},
  };
  return { client, commits };
}

function consumed(
  partition: number,
  offset: bigint,
  event: AnyEvent | null,
  key = 'k',
): ConsumedKafkaMessage {
  const attrs = event ? eventAttributes(event, 'svc', 'application/json', key) : {};
  return {
    topic: 'shop',
    partition,
    offset,
    leaderEpoch: 0,
    key: Buffer.from(key),
    value: event ? Buffer.from(jsonPayloadSerializer.serialize(event)) : Buffer.from('garbage'),
    headerEntries: entries(toKafkaHeaders(attrs)),
  };
}

describe('consumer loop (through the client ports)', () => {
  it('handles, retries, dead-letters and commits per partition only past finished records', async () => {
    const events = ['ok-1', 'poison', 'ok-2'].map((id) => Shipped.create({ orderId: id }));
    const records = [
      consumed(0, 0n, events[0]!, 'a'),
      consumed(0, 1n, events[1]!, 'b'),
      consumed(0, 2n, null, 'c'), // malformed: no envelope
      consumed(1, 7n, events[2]!, 'a'),
    ];
    const { client, commits } = recordsClient(records);
    const { producer: dlq, sent } = recordingProducer();
    const handled: string[] = [];
    const consumer = createKafkaConsumer({
      consumer: client,
      deadLetterProducer: dlq,
      groupId: 'g-unit',
      topics: ['shop'],
      catalog,
      maxAttempts: 3,
      backoff: { initialMs: 1, maxMs: 2 },
      handle: (e) => {
        const id = (e.payload as { orderId: string }).orderId;
        if (id === 'poison') throw new Error('always fails');
        handled.push(id);
      },
    });
    await consumer.start();
    await waitFor(() => consumer.health().inFlight === 0 && sent.length === 2, 5000, 'records finished');
    await consumer.stop();
    expect(handled.sort()).toEqual(['ok-1', 'ok-2']);
    const dead = sent.map((b) => b[0]!);
    expect(dead.map((r) => r.topic)).toEqual(['shop.DLT', 'shop.DLT']);
    const reasons = dead.map((r) =>
      Object.fromEntries([...r.headers].map(([k, v]) => [k.toString(), v.toString()])),
    );
    const poison = reasons.find((h) => h.ce_deadletteroffset === '1')!;
    expect(poison.ce_deadletterreason).toMatch(/failed 3 times: Error: always fails/);
    expect(poison.ce_deadletterattempts).toBe('3');
    const malformed = reasons.find((h) => h.ce_deadletteroffset === '2')!;
    expect(malformed.ce_deadletterreason).toMatch(/undecodable/);
    expect(dead.find((r) => r.value.toString() === 'garbage')).toBeDefined();
    const last = (p: number) => commits.filter((c) => c.partition === p).at(-1)?.offset;
    expect(last(0)).toBe(3n);
    expect(last(1)).toBe(8n);
    // commits per partition only ever move forward
    for (const p of [0, 1]) {
      const seq = commits.filter((c) => c.partition === p).map((c) => c.offset);
      expect([...seq].sort((x, y) => (x < y ? -1 : 1))).toEqual(seq);
    }
    expect(consumer.health()).toMatchObject({ handled: 2, deadLettered: 2, running: false });
  });

  it('never commits past a record whose handler is still running; stop waits for it', async () => {
    const events = ['slow', 'fast'].map((id) => Shipped.create({ orderId: id }));
    const { client, commits } = recordsClient([
      consumed(0, 0n, events[0]!, 'x'),
      consumed(0, 1n, events[1]!, 'y'),
    ]);
    let releaseSlow: () => void = () => undefined;
    const gate = new Promise<void>((r) => {
      releaseSlow = r;
    });
    let slowStarted = false;
    let fastDone = false;
    const consumer = createKafkaConsumer({
      consumer: client,
      deadLetterProducer: recordingProducer().producer,
      groupId: 'g-unit-2',
      topics: ['shop'],
      concurrency: 2,
      handle: async (e) => {
        if ((e.payload as { orderId: string }).orderId === 'slow') {
          slowStarted = true;
          await gate;
        } else fastDone = true;
      },
    });
    await consumer.start();
    // handled counts the fast record once its offset is marked finished (a commit would be sent then)
    await waitFor(() => slowStarted && fastDone && consumer.health().handled === 1, 5000, 'fast record');
    expect(commits).toEqual([]); // offset 1 finished, but 0 did not
    const stopping = consumer.stop();
    // Lets stop() get to its drain before the slow handler ends (nothing observable marks that point); the
    // handler is gated, so a longer or shorter wait cannot turn a broken stop() green: it would resolve early.
    await new Promise((r) => setTimeout(r, 20));
    releaseSlow();
    await stopping;
    expect(commits.at(-1)).toEqual({ partition: 0, offset: 2n });
  });

  it('start() fails and cleans up when the first stream cannot be opened', async () => {
    const client: KafkaConsumerLike = {
      async consume() {
        throw new Error('ECONNREFUSED');
      },
      async commit() {},
      async close() {},
    };
    const consumer = createKafkaConsumer({
      consumer: client,
      deadLetterProducer: recordingProducer().producer,
      groupId: 'g',
      topics: ['t'],
      handle: () => undefined,
    });
    await expect(consumer.start()).rejects.toThrowError(/ECONNREFUSED/);
    expect(consumer.health().running).toBe(false);
  });
});
