/**
 * Contract of a broker package's publisher and consumer (`MessagePublisher` of `@cqrs-ts/core/spi`,
 * `MessageConsumer` of `@cqrs-ts/core`), over the real broker: delivery in the producer's context, one result per
 * published message, acknowledgement only after success, retry with the processor's backoff, dead letters with
 * the reason, malformed messages, pausing while a handler's dependency is down, per-key order, a graceful stop,
 * and reconnection.
 * @module
 */
import {
  type AmbientContext,
  type AnyEvent,
  createInMemoryInboxGuard,
  createMessageCatalog,
  currentContext,
  defineEvent,
  type MessageConsumer,
  type MessageProcessorOptions,
  runWithContext,
} from '@cqrs-ts/core';
import { createOutboxEncoder, type MessagePublisher, toOutboxMessages } from '@cqrs-ts/core/spi';
import { expect } from 'vitest';
import { waitFor } from '../wait-for.ts';
import { describeHarness, type HarnessTest } from './harness.ts';

/** What the suite asks of a consumer: the processor's options (the harness names the consumer) and a limit. */
export type BrokerConsumerOptions = Omit<MessageProcessorOptions, 'name'> & {
  /** Handlers running at once. */
  readonly concurrency?: number;
};

/** A dead letter as the harness reads it back from the dead-letter destination. */
export interface BrokerDeadLetter {
  /** The CloudEvents `id` of the message, when it had one. */
  readonly id: string | undefined;
  /** The processor's reason, as the consumer recorded it. */
  readonly reason: string;
  /** The message's data as it was received. */
  readonly data: Uint8Array;
}

/** What a broker package provides to run {@link describeBrokerContract}. */
export interface BrokerHarness {
  /** The topic of this test's events (fresh after each `reset`). */
  readonly topic: string;
  /** The publisher under test, to `topic`'s destination. */
  publisher(): MessagePublisher;
  /**
   * A consumer of `topic` with these options, named by the harness. The suite makes it before publishing and
   * starts it after: messages published in between wait for it (declare queues and groups in `reset`). The suite
   * stops every consumer it made when the test ends.
   */
  consumer(options: BrokerConsumerOptions): MessageConsumer;
  /** Publishes `data` with these CloudEvents attributes (in the binding's headers) to `topic`, not through the publisher. */
  publishRaw(data: Uint8Array, attributes?: Readonly<Record<string, string>>): Promise<void>;
  /** The dead letters of the consumer group so far. */
  deadLetters(): Promise<readonly BrokerDeadLetter[]>;
  /** Messages of `topic` the consumer group has not acknowledged yet: queued, in flight or waiting for a retry. */
  backlog(): Promise<number>;
  /**
   * Cuts the consumers' connections to the broker (not the publisher's; e.g. through a TCP proxy, see
   * `createTcpProxy`) and lets them connect again. Without it the reconnection test is skipped.
   */
  interrupt?(): Promise<void>;
  /** A fresh topic, destination and consumer group for the next test. */
  reset(): Promise<void>;
  close(): Promise<void>;
}

interface Tick {
  readonly key: string;
  readonly n: number;
}

const TRACEPARENT = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';
const encoder = createOutboxEncoder({ source: 'cqrs-ts.contract' });

const ticks = (topic: string) =>
  defineEvent('contract.ticked', { topic, key: (p: Tick) => p.key }).withPayload<Tick>();

async function publish(h: BrokerHarness, events: readonly AnyEvent[]): Promise<void> {
  const results = await h.publisher().publish(toOutboxMessages(encoder.encode(events, Date.now())));
  expect(results).toHaveLength(events.length);
  expect(results.filter((r) => !r.ok)).toEqual([]);
}

const payloadOf = (e: AnyEvent) => e.payload as Tick;

/**
 * Registers the publisher/consumer contract for one broker package. `setup` runs once (return `undefined` to
 * skip, e.g. when the broker is unreachable); `reset` runs before each test.
 */
export function describeBrokerContract(name: string, setup: () => Promise<BrokerHarness | undefined>): void {
  describeHarness(`${name} broker contract`, setup, (register) => {
    // Every consumer a test makes is stopped when the test ends, whatever happened in it.
    const test: HarnessTest<BrokerHarness> = (title, fn, options) =>
      register(
        title,
        async (h) => {
          const made: MessageConsumer[] = [];
          const consumer = (o: BrokerConsumerOptions) => {
            const c = h.consumer(o);
            made.push(c);
            return c;
          };
          try {
            await fn(Object.create(h, { consumer: { value: consumer } }) as BrokerHarness);
          } finally {
            for (const c of made) await c.stop();
          }
        },
        options,
      );
    test('delivers a batch in the producer’s context, one ok result per message, each handled once', async (h) => {
      const Ticked = ticks(h.topic);
      const context = {
        correlationId: 'corr-42',
        traceparent: TRACEPARENT,
        tenantId: 'acme',
        requestedBy: 'u-1',
      };
      const events = runWithContext(context, () =>
        Array.from({ length: 30 }, (_, n) => Ticked.create({ key: `k${n % 3}`, n })),
      );
      const seen = new Map<string, { event: AnyEvent; ctx: AmbientContext | undefined; attempt: number }[]>();
      const consumer = h.consumer({
        catalog: createMessageCatalog([Ticked]),
        handle(event, hc) {
          const list = seen.get(event.metadata.requestId) ?? [];
          list.push({ event, ctx: currentContext(), attempt: hc.deliveryAttempt });
          seen.set(event.metadata.requestId, list);
        },
      });
      await publish(h, events);
      await consumer.start();
      await waitFor(() => consumer.health().handled === events.length, 15_000, 'every event handled');
      expect(consumer.health()).toMatchObject({
        running: true,
        connected: true,
        retried: 0,
        deadLettered: 0,
      });
      await consumer.stop();
      expect(consumer.health().running).toBe(false);
      expect(await h.backlog()).toBe(0);
      expect([...seen.keys()].sort()).toEqual(events.map((e) => e.metadata.requestId).sort());
      const first = events[0]!;
      const [got] = seen.get(first.metadata.requestId)!;
      expect(seen.get(first.metadata.requestId)).toHaveLength(1);
      expect(got!.event.type).toBe('contract.ticked');
      expect(got!.event.payload).toEqual(first.payload);
      expect(got!.attempt).toBe(1);
      expect(got!.ctx).toMatchObject({
        correlationId: 'corr-42',
        causationId: first.metadata.requestId,
        traceparent: TRACEPARENT,
        tenantId: 'acme',
        requestedBy: 'u-1',
      });
    });

    test('acknowledges only after success: a failing handler gets the message again after the backoff', async (h) => {
      const Ticked = ticks(h.topic);
      const attempts: { attempt: number; at: number }[] = [];
      const consumer = h.consumer({
        maxAttempts: 5,
        backoff: { initialMs: 100, maxMs: 100, jitter: 'none' },
        handle(_event, hc) {
          attempts.push({ attempt: hc.deliveryAttempt, at: performance.now() });
          if (hc.deliveryAttempt < 3) throw new Error('transient');
        },
      });
      await publish(h, [Ticked.create({ key: 'a', n: 1 })]);
      await consumer.start();
      await waitFor(() => consumer.health().handled === 1, 15_000, 'success on the third delivery');
      await consumer.stop();
      expect(attempts.map((a) => a.attempt)).toEqual([1, 2, 3]);
      expect(attempts[1]!.at - attempts[0]!.at).toBeGreaterThanOrEqual(50);
      expect(consumer.health()).toMatchObject({ handled: 1, retried: 2, deadLettered: 0 });
      expect(await h.backlog()).toBe(0);
    });

    test('dead-letters a message that keeps failing, with the reason, while the messages behind it flow', async (h) => {
      const Ticked = ticks(h.topic);
      const poison = Ticked.create({ key: 'p', n: 0 });
      const good = Array.from({ length: 10 }, (_, n) => Ticked.create({ key: `g${n % 2}`, n: n + 1 }));
      const handled: number[] = [];
      const consumer = h.consumer({
        maxAttempts: 3,
        backoff: { initialMs: 20, maxMs: 20, jitter: 'none' },
        handle(event) {
          if (payloadOf(event).key === 'p') throw new Error('poison pill');
          handled.push(payloadOf(event).n);
        },
      });
      await publish(h, [poison, ...good]);
      await consumer.start();
      await waitFor(
        () => consumer.health().deadLettered === 1 && handled.length === good.length,
        15_000,
        'the dead letter and the good messages',
      );
      await consumer.stop();
      const dead = await h.deadLetters();
      expect(dead.map((d) => d.id)).toEqual([poison.metadata.requestId]);
      expect(dead[0]!.reason).toMatch(/^failed 3 times: Error: poison pill/);
      expect([...handled].sort((a, b) => a - b)).toEqual(good.map((e) => payloadOf(e).n));
      expect(consumer.health()).toMatchObject({ deadLettered: 1, retried: 2, handled: good.length });
      expect(await h.backlog()).toBe(0);
    });

    test('dead-letters malformed bytes and unknown types at once, with the reason, and keeps consuming', async (h) => {
      const Ticked = ticks(h.topic);
      const consumer = h.consumer({ catalog: createMessageCatalog([Ticked]), maxAttempts: 5, handle() {} });
      await h.publishRaw(new Uint8Array([0xff, 0x00, 0x13]));
      await h.publishRaw(new TextEncoder().encode('{}'), {
        specversion: '1.0',
        id: 'contract-unknown-1',
        source: 'cqrs-ts.contract',
        type: 'contract.unknown',
        datacontenttype: 'application/json',
      });
      const after = Ticked.create({ key: 'a', n: 1 });
      await publish(h, [after]);
      await consumer.start();
      await waitFor(
        () => consumer.health().deadLettered === 2 && consumer.health().handled === 1,
        15_000,
        'two dead letters and the good message',
      );
      await consumer.stop();
      const dead = await h.deadLetters();
      expect(dead).toHaveLength(2);
      expect(dead.every((d) => d.reason.startsWith('undecodable:'))).toBe(true);
      expect(dead.find((d) => d.id === 'contract-unknown-1')?.reason).toMatch(/unknown message type/i);
      const garbage = dead.find((d) => d.id !== 'contract-unknown-1');
      expect([...(garbage?.data ?? [])]).toEqual([0xff, 0x00, 0x13]); // kept as it arrived
      expect(consumer.health().retried).toBe(0);
      expect(await h.backlog()).toBe(0);
    });

    test('pauses while a handler’s dependency is down: holds the messages without spending attempts, probes, resumes in key order', async (h) => {
      const Ticked = ticks(h.topic);
      const events = Array.from({ length: 12 }, (_, n) => Ticked.create({ key: `k${n % 3}`, n }));
      let dependencyUp = false;
      let calls = 0;
      const handled: { n: number; key: string; attempt: number }[] = [];
      const consumer = h.consumer({
        concurrency: 4,
        maxAttempts: 2,
        backoff: { initialMs: 10, maxMs: 10, jitter: 'none' },
        pause: { probeIntervalMs: 20, maxProbeIntervalMs: 50 },
        handle(event, hc) {
          calls++;
          if (!dependencyUp) {
            // what a database driver throws when its server is down
            throw Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' });
          }
          const { key, n } = payloadOf(event);
          handled.push({ n, key, attempt: hc.deliveryAttempt });
        },
      });
      await publish(h, events);
      await consumer.start();
      await waitFor(() => consumer.health().paused, 15_000, 'the consumer to pause');
      const pausedAt = calls;
      await waitFor(() => calls >= pausedAt + 5, 15_000, 'probes while paused');
      expect(consumer.health()).toMatchObject({ paused: true, retried: 0, deadLettered: 0, handled: 0 });
      expect(consumer.health().pausedSince).toBeTypeOf('number');
      dependencyUp = true;
      await waitFor(
        () => consumer.health().handled === events.length,
        15_000,
        'every event after the resume',
      );
      expect(consumer.health()).toMatchObject({
        paused: false,
        pausedSince: undefined,
        pauses: 1,
        retried: 0,
        deadLettered: 0,
      });
      // no attempt was spent: each message was handled on its first delivery, in key order
      expect(handled.map((x) => x.attempt)).toEqual(events.map(() => 1));
      for (const key of ['k0', 'k1', 'k2']) {
        const ns = handled.filter((x) => x.key === key).map((x) => x.n);
        expect(ns, key).toEqual([...ns].sort((a, b) => a - b));
      }
      await consumer.stop();
      expect(await h.deadLetters()).toEqual([]);
      expect(await h.backlog()).toBe(0);
    });

    test('with an inbox guard a message published twice has one effect; the second is acknowledged', async (h) => {
      const Ticked = ticks(h.topic);
      const effects: string[] = [];
      const consumer = h.consumer({
        inbox: createInMemoryInboxGuard(),
        handle(event) {
          effects.push(event.metadata.requestId);
        },
      });
      // the same event twice on the wire, as a producer retry past a deduplication window would send it
      const [message] = toOutboxMessages(encoder.encode([Ticked.create({ key: 'a', n: 1 })], Date.now()));
      const results = await h.publisher().publish([message!, { ...message!, id: `${message!.id}-again` }]);
      expect(results.filter((r) => !r.ok)).toEqual([]);
      await consumer.start();
      await waitFor(
        () => consumer.health().handled + consumer.health().duplicates === 2,
        15_000,
        'both deliveries',
      );
      await consumer.stop();
      expect(consumer.health()).toMatchObject({ handled: 1, duplicates: 1 });
      expect(effects).toEqual([message!.headers.id]);
      expect(await h.backlog()).toBe(0);
    });

    test('handles the messages of one key one at a time, in publish order', async (h) => {
      const Ticked = ticks(h.topic);
      const events = Array.from({ length: 40 }, (_, n) => Ticked.create({ key: `k${n % 2}`, n }));
      const running = new Set<string>();
      let overlap = false;
      let peak = 0;
      const order = new Map<string, number[]>();
      const consumer = h.consumer({
        concurrency: 4,
        async handle(event) {
          const { key, n } = payloadOf(event);
          if (running.has(key)) overlap = true;
          running.add(key);
          peak = Math.max(peak, running.size);
          await new Promise((resolve) => setTimeout(resolve, 1 + (n % 3)));
          order.set(key, [...(order.get(key) ?? []), n]);
          running.delete(key);
        },
      });
      await publish(h, events);
      await consumer.start();
      await waitFor(() => consumer.health().handled === events.length, 15_000, 'every event handled');
      await consumer.stop();
      expect(overlap).toBe(false);
      expect(peak).toBeLessThanOrEqual(2);
      for (const [key, ns] of order) {
        expect(ns, key).toEqual([...ns].sort((a, b) => a - b));
        expect(ns).toHaveLength(20);
      }
    });

    test('a graceful stop lets the running handler finish and acknowledges it', async (h) => {
      const Ticked = ticks(h.topic);
      let release!: () => void;
      const gate = new Promise<void>((resolve) => {
        release = resolve;
      });
      let entered = false;
      let finished = false;
      const consumer = h.consumer({
        async handle() {
          entered = true;
          await gate;
          finished = true;
        },
      });
      await publish(h, [Ticked.create({ key: 'a', n: 1 })]);
      await consumer.start();
      await waitFor(() => entered, 15_000, 'the handler to start');
      let stopped = false;
      const stopping = consumer.stop().then(() => {
        stopped = true;
      });
      // a window in which a stop that does not wait for its handlers would already have finished
      await new Promise((resolve) => setTimeout(resolve, 100));
      expect(stopped).toBe(false);
      release();
      await stopping;
      expect(finished).toBe(true);
      expect(consumer.health().handled).toBe(1);
      expect(await h.backlog()).toBe(0);
    });

    test(
      'reconnects after losing its connection and keeps consuming',
      async (h) => {
        const Ticked = ticks(h.topic);
        const seen = new Set<number>();
        const consumer = h.consumer({
          handle(event) {
            seen.add(payloadOf(event).n);
          },
        });
        await consumer.start();
        await publish(h, [Ticked.create({ key: 'a', n: 1 })]);
        await waitFor(() => seen.has(1), 15_000, 'the message before the cut');
        await h.interrupt!();
        await publish(h, [Ticked.create({ key: 'a', n: 2 })]);
        await waitFor(() => seen.has(2), 30_000, 'the message after the cut');
        await waitFor(() => consumer.health().connected, 15_000, 'the consumer to report connected');
        expect(consumer.health().reconnects).toBeGreaterThanOrEqual(1);
        // no backlog check: an acknowledgement in flight when the connection was cut may be lost (redelivered later)
        await consumer.stop();
      },
      { when: (h) => h.interrupt !== undefined, timeout: 60_000 },
    );
  });
}
