/**
 * The `write` suite's event-append cases: an expected-version append of one event to a stream, hand-written and
 * through the event-sourced repository, in the same hand-written transaction with the same client. A database
 * module provides {@link EventAppendParts}.
 */
import { type AnyEvent, createEventSourcedRepository, type EventStore } from '@cqrs-ts/core';
import { usPerOp } from '../outbox/common.ts';
import { OrderPlaced } from './common.ts';
import { pairedRatio } from './paired.ts';

/** What a database module provides for the event-append cases, over the tables of its `WriteParts`. */
export interface EventAppendParts<C> {
  /** The hand-written transaction: BEGIN, `fn`, COMMIT (ROLLBACK on a throw), with the same client. */
  tx(fn: (c: C) => Promise<void>): Promise<void>;
  /** The storage package's event store over the same client and tables. */
  readonly eventStore: EventStore<C>;
  /**
   * The hand-written append: move the stream's row from `expected` to `expected + 1` (an INSERT when 0; throws
   * when no row matched), then INSERT the event's outbox row with its stream id and version, the payload as JSON
   * bytes and the CloudEvents headers a publisher needs.
   */
  rawAppend(c: C, row: RawEventRow, expected: number): Promise<void>;
}

/** One event as the hand-written append writes it. */
export interface RawEventRow {
  readonly id: string;
  readonly type: string;
  readonly topic: string;
  readonly key: string;
  readonly payload: Uint8Array;
  readonly headers: string;
  readonly createdAt: number;
  readonly streamId: string;
}

export const EVENT_APPEND_KINDS = [
  ['raw event append', 'raw-event-append'],
  ['aggregate append', 'aggregate-append'],
] as const;
export type EventAppendKind = (typeof EVENT_APPEND_KINDS)[number][1];

const STREAMS = 100;
const utf8 = new TextEncoder();

/**
 * The two appends over `parts`, each over 100 streams of its own (the hand-written one on `order-r<i>` when
 * `pairedRaw`, else `order-s<i>`; the repository's on `order-s<i>`); each creates its event inside the timed loop.
 */
function appendOps<C>(
  parts: EventAppendParts<C>,
  pairedRaw: boolean,
): Record<EventAppendKind, () => Promise<void>> {
  const { tx, eventStore, rawAppend } = parts;
  const rawVersions = new Array<number>(STREAMS).fill(0);
  const versions = new Array<number>(STREAMS).fill(0);
  const rawStream = pairedRaw ? 'order-r' : 'order-s';
  let rawN = 0;
  let n = 0;
  const repo = createEventSourcedRepository({
    name: 'order',
    store: eventStore,
    events: [OrderPlaced],
    initialState: () => 0,
    evolve: (count: number) => count + 1,
  });
  return {
    'raw-event-append': () =>
      tx(async (c) => {
        const i = rawN % STREAMS;
        const event = OrderPlaced.create({ k: `k${i}`, n: rawN++ }) as AnyEvent;
        const m = event.metadata;
        const headers = JSON.stringify({
          specversion: '1.0',
          id: m.requestId,
          source: 'bench',
          type: event.type,
          time: m.requestedAt,
          datacontenttype: 'application/json',
          correlationid: m.correlationId,
          subject: `k${i}`,
          partitionkey: `k${i}`,
        });
        const row: RawEventRow = {
          id: m.requestId,
          type: event.type,
          topic: 'bench',
          key: `k${i}`,
          payload: utf8.encode(JSON.stringify(event.payload)),
          headers,
          createdAt: Date.now(),
          streamId: `${rawStream}${i}`,
        };
        await rawAppend(c, row, rawVersions[i]!);
        rawVersions[i]!++;
      }),
    'aggregate-append': () =>
      tx(async (c) => {
        const i = n % STREAMS;
        const event = OrderPlaced.create({ k: `k${i}`, n: n++ });
        await repo.append(c, `s${i}`, [event], { expectedVersion: versions[i]! });
        versions[i]!++;
      }),
  };
}

/**
 * Microseconds per append; for the aggregate append also its time over the hand-written one's, measured op by
 * op in the same process (`x_paired`, see {@link pairedRatio}).
 */
export async function measureEventAppend<C>(
  parts: EventAppendParts<C>,
  kind: EventAppendKind,
): Promise<{ us_per_op: number; x_paired?: number }> {
  const ops = appendOps(parts, kind === 'aggregate-append');
  const us = await usPerOp(ops[kind]);
  if (kind !== 'aggregate-append') return { us_per_op: us };
  return { us_per_op: us, x_paired: await pairedRatio(ops['raw-event-append'], ops[kind]) };
}
