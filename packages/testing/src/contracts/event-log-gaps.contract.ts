/**
 * The gap test of an event log: concurrent writers whose transactions commit out of order (random commit
 * delays, some rollbacks) while a reader follows the log by checkpointing positions. The reader must see every
 * committed event exactly once, in increasing positions: a late commit is never skipped.
 * @module
 */
import { type AnyEvent, defineEvent, type EventLog, LOG_START } from '@cqrs-ts/core';
import { expect } from 'vitest';
import { describeHarness } from './harness.ts';

/** One transaction of a writer: append `events` (to a stream when `streamId` is set), wait, then commit or roll back. */
export interface GapBatch {
  readonly events: readonly AnyEvent[];
  /** Append to this stream (expected version `any`) instead of to the outbox alone. */
  readonly streamId?: string;
  /** Milliseconds between the append and the commit. */
  readonly commitDelayMs: number;
  /** Roll back instead of committing. */
  readonly rollback: boolean;
}

/** What a storage adapter provides to run {@link describeEventLogGapContract}. */
export interface EventLogGapHarness {
  /** The log the reader follows. */
  readonly log: EventLog;
  /** Runs one batch as writer `writer` (0 to `writers - 1`), each writer on a connection of its own. */
  write(writer: number, batch: GapBatch): Promise<void>;
  /**
   * Optional: the ids after `seq` in plain sequence order, as a naive reader that checkpoints on the sequence
   * alone would read them; the suite reports how many events such a reader skipped (for comparison only).
   */
  naiveRead?(
    afterSeq: number,
    limit: number,
  ): Promise<readonly { readonly id: string; readonly seq: number }[]>;
  reset?(): Promise<void>;
  close(): Promise<void>;
}

/** Options of {@link describeEventLogGapContract}. */
export interface EventLogGapOptions {
  /** Concurrent writers. @default 8 */
  readonly writers?: number;
  /** Committed events to reach. @default 200_000 */
  readonly events?: number;
  /** Largest random commit delay, ms. @default 4 */
  readonly maxCommitDelayMs?: number;
  /** Most events one transaction appends (each appends 1 to this many). @default 24 */
  readonly maxBatch?: number;
  /** Share of transactions rolled back. @default 0.005 */
  readonly rollbackRate?: number;
  /** Reader batch size. @default 2_000 */
  readonly readLimit?: number;
  /** Test timeout, ms. @default 300_000 */
  readonly timeoutMs?: number;
  /** Receives the figures of the run (for the report). */
  readonly report?: (figures: GapFigures) => void;
}

/** What a gap run measured. */
export interface GapFigures {
  readonly committed: number;
  readonly rolledBack: number;
  readonly transactions: number;
  readonly read: number;
  readonly duplicates: number;
  readonly missing: number;
  readonly seconds: number;
  /** Events a naive sequence-checkpointing reader never saw (when the harness has `naiveRead`). */
  readonly naiveSkipped: number | undefined;
}

const GapEvent = defineEvent('contract.gap').withPayload<{ w: number; n: number }>();

/** A small deterministic generator, so a failing run can be told apart from noise by its seed. */
function random(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Registers the gap test for one log store. `setup` runs once (its `undefined` skips the suite).
 */
export function describeEventLogGapContract(
  name: string,
  setup: () => Promise<EventLogGapHarness | undefined>,
  options: EventLogGapOptions = {},
): void {
  const writers = options.writers ?? 8;
  const total = options.events ?? 200_000;
  const maxDelay = options.maxCommitDelayMs ?? 4;
  const rollbackRate = options.rollbackRate ?? 0.005;
  const maxBatch = options.maxBatch ?? 24;
  const readLimit = options.readLimit ?? 2_000;
  describeHarness(`${name} event log gaps`, setup, (test) => {
    test(
      `${writers} concurrent writers committing out of order over ${total.toLocaleString('en-US')} events: a checkpointing reader skips nothing`,
      async (h) => {
        const started = Date.now();
        const committed = new Set<string>();
        let rolledBack = 0;
        let transactions = 0;
        let appended = 0;
        let writing = true;

        const writer = async (w: number) => {
          const next = random(w * 7919 + 17);
          let n = 0;
          while (appended < total) {
            const size = 1 + Math.floor(next() * maxBatch);
            const events = Array.from({ length: size }, () => GapEvent.create({ w, n: n++ }) as AnyEvent);
            appended += size;
            const rollback = next() < rollbackRate;
            const stream = next() < 0.1 ? `gap-w${w}` : undefined;
            const batch: GapBatch = {
              events,
              commitDelayMs: Math.floor(next() * (maxDelay + 1)),
              rollback,
              ...(stream === undefined ? {} : { streamId: stream }),
            };
            transactions++;
            await h.write(w, batch);
            if (rollback) {
              rolledBack++;
              appended -= size;
            } else for (const e of events) committed.add(e.metadata.requestId);
          }
        };

        const seen = new Map<string, number>();
        const read: string[] = [];
        let duplicates = 0;
        let lastPosition = LOG_START;
        const reader = async () => {
          let after = LOG_START;
          for (;;) {
            const batch = await h.log.read({ after, limit: readLimit });
            for (const e of batch.entries) {
              expect(e.position > lastPosition, `position ${e.position} after ${lastPosition}`).toBe(true);
              lastPosition = e.position;
              if (seen.has(e.id)) duplicates++;
              seen.set(e.id, read.length);
              read.push(e.id);
            }
            after = batch.position;
            if (batch.entries.length === 0) {
              if (!writing && read.length - duplicates >= committed.size) return;
              if (!writing && Date.now() - stoppedAt > 60_000) return;
              await new Promise((resolve) => setTimeout(resolve, 2));
            }
          }
        };

        let naiveSkipped: number | undefined;
        const naiveSeen = new Set<string>();
        const naive = async () => {
          if (h.naiveRead === undefined) return;
          let after = 0;
          for (;;) {
            const rows = await h.naiveRead(after, readLimit);
            for (const r of rows) {
              naiveSeen.add(r.id);
              after = r.seq;
            }
            if (rows.length === 0) {
              if (!writing) return;
              await new Promise((resolve) => setTimeout(resolve, 2));
            }
          }
        };

        let stoppedAt = 0;
        const reading = reader();
        const naiveReading = naive();
        await Promise.all(Array.from({ length: writers }, (_, w) => writer(w)));
        writing = false;
        stoppedAt = Date.now();
        await Promise.all([reading, naiveReading]);
        if (h.naiveRead !== undefined) {
          naiveSkipped = 0;
          for (const id of committed) if (!naiveSeen.has(id)) naiveSkipped++;
        }
        let missing = 0;
        for (const id of committed) if (!seen.has(id)) missing++;
        const figures: GapFigures = {
          committed: committed.size,
          rolledBack,
          transactions,
          read: read.length,
          duplicates,
          missing,
          seconds: Math.round((Date.now() - started) / 100) / 10,
          naiveSkipped,
        };
        options.report?.(figures);
        expect(committed.size).toBeGreaterThanOrEqual(total);
        expect({ missing, duplicates, extra: seen.size - committed.size }).toEqual({
          missing: 0,
          duplicates: 0,
          extra: 0,
        });
      },
      { timeout: options.timeoutMs ?? 300_000 },
    );
  });
}
