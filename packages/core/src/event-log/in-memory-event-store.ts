import { ConcurrencyError } from '../errors/concurrency-error.ts';
import { ConfigurationError } from '../errors/cqrs-error.ts';
import { StorageError } from '../errors/storage-error.ts';
import type { InMemoryOutboxStore, InMemoryOutboxTransaction } from '../outbox/in-memory-outbox-store.ts';
import {
  createInMemoryOutboxStore,
  type InMemoryOutboxInternals,
  type InMemoryStoreTransaction,
  inMemoryOutboxInternals,
  inMemoryTransactionOf,
  onInMemoryTransactionEnd,
  type StagedRecord,
} from '../outbox/in-memory-outbox-store.ts';
import type { OutboxRecord } from '../outbox/outbox-record.ts';
import {
  checkLogRead,
  checkStreamAppend,
  checkStreamRead,
  type EventLogEntry,
  type EventStore,
  expectationMet,
  formatLogPosition,
  keyedByStream,
  parseLogPosition,
  type StreamSnapshot,
} from './event-log.ts';

/** The in-memory {@link EventStore}, with the outbox store it writes to. */
export interface InMemoryEventStore extends EventStore<InMemoryStoreTransaction> {
  /** The outbox the stream events are appended to (relay it like any outbox). */
  readonly outbox: InMemoryOutboxStore;
  /**
   * Runs `fn` in a new transaction of the outbox: commits when it resolves, rolls back when it throws. The store
   * also writes in the transactions of an in-memory unit of work over the same outbox.
   */
  transaction<T>(fn: (tx: InMemoryOutboxTransaction) => Promise<T> | T): Promise<T>;
}

/** Options of {@link createInMemoryEventStore}. */
export interface InMemoryEventStoreOptions {
  /** The outbox store to write to and read from. @default a new one with `archive: true` */
  readonly outbox?: InMemoryOutboxStore;
}

interface Head {
  readonly version: number;
  readonly snapshot: StreamSnapshot | undefined;
}

type Row = OutboxRecord & { readonly streamId?: string | null; readonly streamVersion?: number | null };

const toEntry = (r: Row): EventLogEntry => ({
  position: formatLogPosition(r.seq),
  id: r.id,
  type: r.type,
  topic: r.topic,
  key: r.key,
  streamId: r.streamId ?? null,
  streamVersion: r.streamVersion ?? null,
  payload: r.payload,
  headers: r.headers,
  contentEncoding: r.contentEncoding,
  createdAt: r.createdAt,
});

/**
 * The event log and streams in process memory, over an in-memory outbox store: the embedded default, and the
 * reference the contract suites hold the SQL stores to. Positions are the outbox sequence, assigned at commit
 * (`single-writer`). Two transactions appending to one stream behave as on a database: the second waits for
 * the first to end, then fails with a ConcurrencyError if the first committed.
 */
export function createInMemoryEventStore(options: InMemoryEventStoreOptions = {}): InMemoryEventStore {
  const outbox = options.outbox ?? createInMemoryOutboxStore({ archive: true });
  const inner: InMemoryOutboxInternals | undefined = inMemoryOutboxInternals(outbox);
  if (inner === undefined)
    throw new ConfigurationError('in-memory event store: outbox must be an in-memory outbox store');
  const heads = new Map<string, Head>();
  /** Committed rows of each stream, by version (the outbox's own row objects, live or archived). */
  const streams = new Map<string, Row[]>();
  const locks = new Map<string, { readonly tx: InMemoryOutboxTransaction; readonly ended: Promise<void> }>();
  /** What each open transaction appended to streams: heads, rows, and a promise of its end (its locks). */
  const open = new WeakMap<
    InMemoryOutboxTransaction,
    { readonly heads: Map<string, Head>; readonly rows: StagedRecord[]; readonly done: Promise<void> }
  >();

  /** The open outbox transaction `handle` is or stands for. */
  const open_ = (handle: InMemoryStoreTransaction): InMemoryOutboxTransaction => {
    const tx = inMemoryTransactionOf(handle);
    if (tx === undefined)
      throw new ConfigurationError(
        'in-memory event store: not a transaction of an in-memory outbox or unit of work',
      );
    if (inner.staged(tx) === undefined) {
      throw new StorageError('closed-transaction', 'in-memory event store: the transaction has ended');
    }
    return tx;
  };

  /** The stream state of `tx`, registered on its first stream append. */
  const stateOf = (tx: InMemoryOutboxTransaction) => {
    const state = open.get(tx);
    if (state !== undefined) return state;
    let resolve!: () => void;
    const done = new Promise<void>((r) => (resolve = r));
    const mine = { heads: new Map<string, Head>(), rows: [] as StagedRecord[], done };
    open.set(tx, mine);
    onInMemoryTransactionEnd(tx, {
      commit() {
        for (const [id, h] of mine.heads) heads.set(id, h);
        for (const r of mine.rows) {
          const row = inner.row(r.id);
          if (row === undefined) continue;
          const list = streams.get(r.streamId!) ?? [];
          list.push(row);
          streams.set(r.streamId!, list);
        }
      },
      end() {
        for (const id of mine.heads.keys()) if (locks.get(id)?.tx === tx) locks.delete(id);
        open.delete(tx);
        resolve();
      },
    });
    return mine;
  };

  const store: InMemoryEventStore = {
    outbox,
    capabilities: Object.freeze({ positions: 'single-writer' as const, archive: inner.archive }),
    transaction: (fn) => outbox.transaction(fn),
    async read(request) {
      const { after, limit, types } = checkLogRead(request);
      const [from] = parseLogPosition(after, 1);
      const rows = inner.logRows();
      // first row after the position (rows are in seq order)
      let lo = 0;
      let hi = rows.length;
      while (lo < hi) {
        const mid = (lo + hi) >>> 1;
        if (BigInt(rows[mid]!.seq) <= from!) lo = mid + 1;
        else hi = mid;
      }
      const wanted = types === undefined ? undefined : new Set(types);
      const entries: EventLogEntry[] = [];
      let position = after;
      for (let i = lo; i < rows.length && entries.length < limit; i++) {
        const r = rows[i]!;
        position = formatLogPosition(r.seq);
        if (wanted === undefined || wanted.has(r.type)) entries.push(toEntry(r));
      }
      return { entries, position };
    },
    async readStream(streamId, opts) {
      const { fromVersion, limit } = checkStreamRead(streamId, opts);
      const rows = streams.get(streamId) ?? [];
      return rows.slice(fromVersion - 1, fromVersion - 1 + limit).map(toEntry);
    },
    async loadStream(handle, streamId, opts) {
      const { fromVersion, limit, useSnapshot } = checkStreamRead(streamId, opts, 'stream load');
      const tx = open_(handle);
      const mine = open.get(tx);
      const head = mine?.heads.get(streamId) ?? heads.get(streamId);
      const snapshot = useSnapshot ? head?.snapshot : undefined;
      const from = Math.max(fromVersion, snapshot === undefined ? 1 : snapshot.version + 1);
      const all: Row[] = [...(streams.get(streamId) ?? [])];
      if (mine !== undefined) for (const r of mine.rows) if (r.streamId === streamId) all.push(r);
      return {
        version: head?.version ?? 0,
        snapshot,
        events: all.slice(from - 1, from - 1 + limit).map(toEntry),
      };
    },
    async appendToStream(handle, streamId, events, opts) {
      const { expected, snapshot } = checkStreamAppend(streamId, events, opts);
      const tx = open_(handle);
      for (;;) {
        const lock = locks.get(streamId);
        if (lock === undefined || lock.tx === tx) break;
        await lock.ended;
        open_(handle);
      }
      const head = open.get(tx)?.heads.get(streamId) ?? heads.get(streamId);
      const current = head?.version ?? 0;
      if (!expectationMet(expected, head?.version)) {
        throw new ConcurrencyError(streamId, expected, head === undefined ? undefined : current);
      }
      if (events.length === 0) return { version: current };
      const rows: StagedRecord[] = inner.encode(events).map((r, i) => ({
        ...keyedByStream(r, streamId),
        streamId,
        streamVersion: current + i + 1,
      }));
      const state = stateOf(tx);
      if (!locks.has(streamId)) locks.set(streamId, { tx, ended: state.done });
      tx.append(rows);
      state.rows.push(...rows);
      const version = current + rows.length;
      state.heads.set(streamId, { version, snapshot: snapshot ?? head?.snapshot });
      return { version };
    },
  };
  return store;
}
