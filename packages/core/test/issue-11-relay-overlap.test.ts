/**
 * Issue 11: after an outage the relay drained a backlog one locked cycle after another (lock, publish, mark,
 * commit). On a store that declares `overlapsLocked`, the background loop locks the next batch while the
 * previous one publishes, and publishes it while the previous one commits: the previous batch's rows are passed
 * as `committing` (they block nothing), the next batch is published only once the previous one went out whole
 * (else it rolls back unpublished) and commits only after the previous one did; a failed commit rolls the next
 * batch back and both go out again, in key order.
 */
import { type AnyEvent, BrokerError, createOutboxRelay, defineEvent, StorageError } from '@cqrs-ts/core';
import {
  createOutboxEncoder,
  type LockedBatchOutcome,
  type LockedBatchRequest,
  type MessagePublisher,
  type OutboxRecord,
  type OutboxStore,
  type PublishResult,
} from '@cqrs-ts/core/spi';
import { describe, expect, it } from 'vitest';
import { waitFor } from './support/services.ts';

const Ticked = defineEvent('overlap.ticked', {
  topic: 'ticks',
  key: (p: { k: string; n: number }) => p.k,
}).withPayload<{ k: string; n: number }>();

/** `count` events over `keys` keys, numbered per key. */
const ticks = (count: number, keys: number): AnyEvent[] =>
  Array.from(
    { length: count },
    (_, i) => Ticked.create({ k: `k${i % keys}`, n: Math.floor(i / keys) }) as AnyEvent,
  );

type Row = { record: OutboxRecord; status: 'pending' | 'published'; lockedBy: number | undefined };

/**
 * A store with `processLocked` as a database runs it: a cycle locks the first due rows nobody holds, in seq
 * order, less those whose key has an earlier pending row outside the batch (unless that row is in `committing`),
 * and writes its outcome at its commit. `commitGate` holds (or fails) a cycle's commit. It records every write
 * that marked a row published while an earlier row of its key was still pending.
 */
function lockingStore(events: readonly AnyEvent[]) {
  const encoded = createOutboxEncoder().encode(events, Date.now());
  const rows: Row[] = encoded.map((r, i) => ({
    record: {
      ...r,
      seq: i + 1,
      status: 'pending',
      attempts: 0,
      nextAttemptAt: 0,
      lastError: null,
      publishedAt: null,
      claimedBy: null,
      claimedUntil: null,
    },
    status: 'pending',
    lockedBy: undefined,
  }));
  const cycles: { committing: readonly number[]; seqs: number[] }[] = [];
  const outOfOrderCommits: number[] = [];
  let commitGate: (cycle: number) => Promise<void> = async () => {};
  const store: OutboxStore<never> = {
    overlapsLocked: true,
    async processLocked(request: LockedBatchRequest, process) {
      const cycle = cycles.length;
      const committing = new Set(request.committing ?? []);
      const blocked = new Set<string>();
      const taken: Row[] = [];
      for (const row of rows) {
        if (row.status !== 'pending') continue;
        const key = row.record.key;
        const free = row.lockedBy === undefined && taken.length < request.limit;
        if (free && (key === null || !blocked.has(key))) taken.push(row);
        else if (key !== null && !committing.has(row.record.seq)) blocked.add(key);
      }
      for (const row of taken) row.lockedBy = cycle;
      cycles.push({ committing: [...committing], seqs: taken.map((r) => r.record.seq) });
      try {
        const outcome: LockedBatchOutcome | undefined = await process(taken.map((r) => r.record));
        if (outcome === undefined) return taken.length; // rolled back
        await commitGate(cycle);
        const published = new Set(outcome.published);
        for (const row of taken) {
          if (!published.has(row.record.id)) continue;
          const earlier = rows.some(
            (r) => r.record.key === row.record.key && r.record.seq < row.record.seq && r.status === 'pending',
          );
          if (earlier) outOfOrderCommits.push(row.record.seq);
          row.status = 'published';
        }
        return taken.length;
      } finally {
        for (const row of taken) row.lockedBy = undefined;
      }
    },
    append: async () => {},
    claimBatch: async () => [],
    markPublished: async () => {},
    markFailed: async () => {},
    release: async () => {},
    listDeadLetters: async () => [],
    replayDeadLetters: async () => 0,
    deleteDeadLetters: async () => 0,
    stats: async () => ({
      backlog: rows.filter((r) => r.status === 'pending').length,
      oldestPendingAgeMs: 0,
      dead: 0,
    }),
    purge: async () => 0,
  };
  return {
    store,
    rows,
    cycles,
    outOfOrderCommits,
    gate(fn: (cycle: number) => Promise<void>) {
      commitGate = fn;
    },
  };
}

/** A publisher that records what it was given, in order. */
function recordingPublisher() {
  const sent: { k: string; n: number }[] = [];
  const calls: { batch: number; done: boolean }[] = [];
  const options = {
    /** Awaited before a call returns (its index). */
    hold: (_call: number): Promise<void> => Promise.resolve(),
    /** Fails this message once (a message-level failure); later ones of its key in the call are not sent. */
    failOnce: undefined as { k: string; n: number } | undefined,
  };
  const publisher: MessagePublisher = {
    capabilities: { preservesKeyOrder: true },
    async publish(batch) {
      const call = { batch: batch.length, done: false };
      calls.push(call);
      const failedKeys = new Set<string>();
      const results = batch.map((m): PublishResult => {
        const p = JSON.parse(new TextDecoder().decode(m.body)) as { k: string; n: number };
        if (failedKeys.has(p.k)) return { ok: false, error: new BrokerError('skipped', 'not sent') };
        const fail = options.failOnce;
        if (fail !== undefined && fail.k === p.k && fail.n === p.n) {
          options.failOnce = undefined;
          failedKeys.add(p.k);
          return { ok: false, error: new Error('rejected once') };
        }
        sent.push(p);
        return { ok: true };
      });
      await options.hold(calls.length - 1);
      call.done = true;
      return results;
    },
  };
  return { publisher, sent, calls, options };
}

/** Whether each key's first deliveries came in order 0, 1, 2, ... */
function firstDeliveriesInOrder(sent: readonly { k: string; n: number }[]): boolean {
  const next = new Map<string, number>();
  for (const s of sent) {
    const expected = next.get(s.k) ?? 0;
    if (s.n > expected) return false;
    if (s.n === expected) next.set(s.k, expected + 1);
  }
  return true;
}

/**
 * Drains `events` through the background loop in batches of 10 while the first cycle's commit (`hold: 'commit'`)
 * or publish (`hold: 'publish'`) is held until the second cycle is locked; `whileHeld` runs then, after which the
 * first is let go (`fail: true`: its commit fails). Resolves once every row is published, the relay stopped, with
 * the checks every case shares done: no row marked published before an earlier one of its key, first deliveries
 * in key order.
 */
async function drainHoldingFirst(o: {
  readonly events: readonly AnyEvent[];
  readonly hold: 'commit' | 'publish';
  readonly fail?: boolean;
  readonly failOnce?: { k: string; n: number };
  readonly whileHeld?: (s: ReturnType<typeof lockingStore>, calls: readonly unknown[]) => void;
}) {
  const s = lockingStore(o.events);
  const recorded = recordingPublisher();
  recorded.options.failOnce = o.failOnce;
  let letGo!: () => void;
  const first = new Promise<void>((resolve, reject) => {
    letGo = o.fail ? () => reject(new StorageError('connection', 'commit lost')) : resolve;
  });
  first.catch(() => undefined);
  const holdFirst = (index: number) => (index === 0 ? first : Promise.resolve());
  if (o.hold === 'commit') s.gate(holdFirst);
  else recorded.options.hold = holdFirst;
  const relay = createOutboxRelay({
    store: s.store,
    publisher: recorded.publisher,
    batchSize: 10,
    pollIntervalMs: 10,
  });
  relay.start();
  try {
    await waitFor(
      () => s.cycles.length >= 2,
      5000,
      `the next batch locked while the first's ${o.hold} is held`,
    );
    o.whileHeld?.(s, recorded.calls);
    letGo();
    await waitFor(() => s.rows.every((r) => r.status === 'published'), 5000, 'every row published');
  } finally {
    letGo();
    await relay.stop();
  }
  expect(s.outOfOrderCommits).toEqual([]);
  expect(firstDeliveriesInOrder(recorded.sent)).toBe(true);
  return { s, sent: recorded.sent, calls: recorded.calls, health: await relay.health() };
}

describe('issue 11: the relay overlaps a locked batch with the commit of the one before', () => {
  it('locks and publishes the next batch while the previous one commits, past its published rows, and commits after it', async () => {
    const { sent } = await drainHoldingFirst({
      events: ticks(40, 4), // 10 rows per key: every batch of 10 holds each key
      hold: 'commit',
      whileHeld(s) {
        expect(s.cycles[1]!.committing).toEqual(s.cycles[0]!.seqs);
        expect(s.cycles[1]!.seqs).toEqual([11, 12, 13, 14, 15, 16, 17, 18, 19, 20]);
      },
    });
    expect(sent).toHaveLength(40);
  });

  it('locks the next batch while the previous one publishes, and publishes it only once that one went out', async () => {
    const { sent } = await drainHoldingFirst({
      events: ticks(40, 4),
      hold: 'publish',
      whileHeld(s, calls) {
        expect(calls).toEqual([{ batch: 10, done: false }]); // the second waits for the first to go out
        expect(s.cycles[1]!.committing).toEqual(s.cycles[0]!.seqs);
      },
    });
    expect(sent).toHaveLength(40);
  });

  it('a batch that did not go out whole: the one locked meanwhile rolls back unpublished, and the key waits for its retry', async () => {
    const { sent, calls } = await drainHoldingFirst({
      events: ticks(40, 4),
      hold: 'publish',
      failOnce: { k: 'k1', n: 1 },
    });
    // the second cycle published nothing: the next call carried the first batch's unpublished rows again
    expect((calls[1] as { batch: number }).batch).toBe(10);
    expect(sent.slice(8, 10)).toEqual([
      { k: 'k1', n: 1 },
      { k: 'k1', n: 2 },
    ]);
    expect(sent).toHaveLength(40); // each row went out once: nothing was published twice
  });

  it('a failed commit rolls back the batch locked after it; both go out again, in key order', async () => {
    const { sent, health } = await drainHoldingFirst({ events: ticks(30, 3), hold: 'commit', fail: true });
    // the rolled-back rows of both batches went out again (at least once), the first batch's before the second's
    const again = sent.slice(20);
    expect(again.slice(0, 10).map((m) => m.n)).toEqual([0, 0, 0, 1, 1, 1, 2, 2, 2, 3]);
    expect(health.lastError).toContain('commit lost');
  });

  it('runOnce stays one whole cycle: it commits before it returns', async () => {
    const s = lockingStore(ticks(20, 2));
    const { publisher } = recordingPublisher();
    const relay = createOutboxRelay({ store: s.store, publisher, batchSize: 10 });
    const first = await relay.runOnce();
    expect(first.published).toBe(10);
    expect(s.rows.filter((r) => r.status === 'published')).toHaveLength(10);
    expect(s.cycles[0]!.committing).toEqual([]);
  });
});
