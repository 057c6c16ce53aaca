/**
 * Contract of a broker package's broadcast (non-competing) consumer (`BroadcastConsumer` of
 * `@cqrs-ts/core/spi`), over the real broker: every instance receives every message, in order, while the
 * package's competing consumers still split them; a failure is retried in process and never reaches the
 * other instances; `stop()` removes what `start()` created; bad options are configuration errors.
 * @module
 */
import {
  type AnyEvent,
  ConfigurationError,
  createInMemoryInboxGuard,
  defineEvent,
  type MessageConsumer,
} from '@cqrs-ts/core';
import {
  type BroadcastConsumer,
  type BroadcastConsumerOptions,
  createOutboxEncoder,
  type MessagePublisher,
  toOutboxMessages,
} from '@cqrs-ts/core/spi';
import { expect } from 'vitest';
import { waitFor } from '../wait-for.ts';
import type { BrokerConsumerOptions } from './broker.contract.ts';
import { describeHarness } from './harness.ts';

/** What a broker package provides to run {@link describeBroadcastContract}. */
export interface BroadcastHarness {
  /** The topic of this test's events (fresh after each `reset`). */
  readonly topic: string;
  /** A publisher to `topic`'s destination. */
  publisher(): MessagePublisher;
  /** A broadcast consumer of `topic` (its `from` at the default: messages published after `start()`). */
  broadcast(options: BroadcastConsumerOptions): BroadcastConsumer;
  /** A competing consumer of `topic`; all those of one test share one group (durable, queue). */
  competing(options: BrokerConsumerOptions): MessageConsumer;
  /** Whether what `instance` created on the broker (consumer, queue, group member) is still there. */
  exists(instance: string): Promise<boolean>;
  /**
   * Cuts the broadcast consumers' connections to the broker (e.g. through a TCP proxy, see `createTcpProxy`) and
   * lets them connect again. Without it the reconnection test is skipped.
   */
  interrupt?(): Promise<void>;
  /** A fresh topic (and competing group) for the next test. */
  reset(): Promise<void>;
  close(): Promise<void>;
}

interface Tick {
  readonly n: number;
}

const encoder = createOutboxEncoder({ source: 'cqrs-ts.contract' });
const ticks = (topic: string) => defineEvent('contract.broadcast', { topic }).withPayload<Tick>();
const range = (count: number) => Array.from({ length: count }, (_, i) => i);

async function publish(h: BroadcastHarness, events: readonly AnyEvent[]): Promise<void> {
  const results = await h.publisher().publish(toOutboxMessages(encoder.encode(events, Date.now())));
  expect(results.filter((r) => !r.ok)).toEqual([]);
}

/**
 * Registers the broadcast-consumer contract for one broker package. `setup` runs once (return `undefined` to
 * skip, e.g. when the broker is unreachable); `reset` runs before each test.
 */
export function describeBroadcastContract(
  name: string,
  setup: () => Promise<BroadcastHarness | undefined>,
): void {
  describeHarness(`${name} broadcast contract`, setup, (test) => {
    const stopping: MessageConsumer[] = [];
    const started = async <T extends MessageConsumer>(c: T): Promise<T> => {
      stopping.push(c);
      await c.start();
      return c;
    };
    const stopAll = async () => {
      for (const c of stopping.splice(0)) await c.stop();
    };

    test('two broadcast consumers each receive every event in order; competing consumers split them', async (h) => {
      const Tick = ticks(h.topic);
      try {
        const seen: number[][] = [[], []];
        const split: number[][] = [[], []];
        for (const i of [0, 1]) {
          await started(
            h.broadcast({ name: 'contract', handle: (e) => void seen[i]!.push((e.payload as Tick).n) }),
          );
          await started(h.competing({ handle: (e) => void split[i]!.push((e.payload as Tick).n) }));
        }
        await publish(
          h,
          range(20).map((n) => Tick.create({ n })),
        );
        await waitFor(
          () => seen.every((s) => s.length >= 20) && split[0]!.length + split[1]!.length >= 20,
          20_000,
          'every broadcast consumer and the group to have every event',
        );
        expect(seen).toEqual([range(20), range(20)]);
        expect([...split[0]!, ...split[1]!].sort((a, b) => a - b)).toEqual(range(20));
      } finally {
        await stopAll();
      }
    });

    test('a failing event is retried in its process, then dropped; the other instance is not affected', async (h) => {
      const Tick = ticks(h.topic);
      try {
        const calls: number[] = [];
        const good: number[] = [];
        const failing = await started(
          h.broadcast({
            name: 'contract',
            maxAttempts: 2,
            backoff: { initialMs: 1, maxMs: 1 },
            handle(e) {
              const n = (e.payload as Tick).n;
              calls.push(n);
              if (n === 1) throw new Error('boom');
            },
          }),
        );
        await started(
          h.broadcast({ name: 'contract', handle: (e) => void good.push((e.payload as Tick).n) }),
        );
        await publish(
          h,
          range(3).map((n) => Tick.create({ n })),
        );
        await waitFor(() => good.length >= 3 && calls.length >= 4, 20_000, 'both instances to finish');
        expect(good).toEqual([0, 1, 2]);
        expect(calls).toEqual([0, 1, 1, 2]);
        expect(failing.health()).toMatchObject({ handled: 2, retried: 1, deadLettered: 1, inFlight: 0 });
      } finally {
        await stopAll();
      }
    });

    test(
      'after a lost connection it subscribes again: what is published then arrives, nothing twice',
      async (h) => {
        const Tick = ticks(h.topic);
        try {
          const seen: number[] = [];
          const c = await started(
            h.broadcast({ name: 'contract', handle: (e) => void seen.push((e.payload as Tick).n) }),
          );
          await publish(h, [Tick.create({ n: 0 })]);
          await waitFor(() => seen.length === 1, 20_000, 'the first event');
          await h.interrupt!();
          await waitFor(
            () => c.health().reconnects >= 1 && c.health().connected,
            30_000,
            'the consumer to reconnect',
          );
          await publish(h, [Tick.create({ n: 1 })]);
          await waitFor(() => seen.includes(1), 30_000, 'the event published after the reconnection');
          expect(seen).toEqual([0, 1]);
        } finally {
          await stopAll();
        }
      },
      { when: (h) => h.interrupt !== undefined, timeout: 90_000 },
    );

    test('stop() removes what start() created on the broker', async (h) => {
      const c = h.broadcast({ name: 'contract', handle: () => {} });
      try {
        await c.start();
        expect(c.instance).toMatch(/^contract-/);
        await waitFor(() => h.exists(c.instance), 10_000, 'the instance’s broker resources');
        expect(c.health()).toMatchObject({ running: true });
      } finally {
        await c.stop();
      }
      expect(await h.exists(c.instance)).toBe(false);
      expect(c.health()).toMatchObject({ running: false, connected: false });
    });

    test('bad options are configuration errors', async (h) => {
      expect(() => h.broadcast({ name: '', handle: () => {} })).toThrow(ConfigurationError);
      const inbox = createInMemoryInboxGuard();
      expect(() =>
        h.broadcast({
          name: 'contract',
          handle: () => {},
          ...({ inbox } as object),
        } as BroadcastConsumerOptions),
      ).toThrow(ConfigurationError);
    });
  });
}
