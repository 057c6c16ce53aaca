import { CancelledError, ConfigurationError } from '../errors/cqrs-error.ts';
import { type EventLog, type EventLogEntry, MAX_LOG_BATCH } from '../event-log/event-log.ts';
import { createLogDecoder, type LogDecoder, synchronousLogDecode } from '../event-log/log-decoder.ts';
import type { AnyEvent } from '../messages/message.ts';
import type { OutboxWakeUp } from '../outbox/outbox-relay.ts';
import { type BackoffOptions, backoffDelay } from '../shared/backoff.ts';
import { errorText } from '../shared/error-text.ts';
import { createHeartbeat, type Heartbeat, type HeartbeatRecorder } from '../shared/heartbeat.ts';
import { type Logger, noopLogger } from '../shared/logger.ts';
import { projectionBatchChannel } from '../shared/tracing.ts';
import { uuidv7 } from '../shared/uuid.ts';
import { ApplyFailure, applyProjection } from './apply-projection.ts';
import type { AnyProjection, ProjectionContext } from './projection.ts';
import type { PoisonReport, ProjectionCheckpoint, ProjectionStore } from './projection-store.ts';

/** Options of {@link createProjectionRunner}. */
export interface ProjectionRunnerOptions<TTx> {
  /** The event log to read (an event store of the storage package). */
  readonly log: EventLog;
  /** Checkpoints, leases and documents, in the database of the read models. */
  readonly store: ProjectionStore<TTx>;
  readonly projections: readonly AnyProjection<TTx>[];
  /** Turns log entries into events; give it the catalog to validate payloads. @default createLogDecoder() */
  readonly decoder?: LogDecoder;
  /** This runner's lease owner id. @default a new UUIDv7 */
  readonly owner?: string;
  /** How long a lease lasts without renewal; a runner that dies is taken over after it. @default 30000 */
  readonly leaseMs?: number;
  /** Events read and applied per transaction, 1 to 10,000. @default 500 */
  readonly batchSize?: number;
  /** Time between reads when the log has nothing new (and no wake-up came). @default 200 */
  readonly pollMs?: number;
  /** Wakes idle projections when events are appended (e.g. `createPostgresWakeUp`). */
  readonly wakeUp?: OutboxWakeUp;
  /** Attempts of a failing event before its poison policy applies, and the delays between them. */
  readonly retry?: { readonly attempts?: number; readonly backoff?: BackoffOptions };
  /** Clock, epoch ms. @default Date.now */
  readonly now?: () => number;
  readonly logger?: Logger;
  /**
   * Called after each batch commits, with its events (e.g. a cache invalidation's `onApplied`: cached results
   * go once the read model has the events). Delivery is at least once; failures are logged, not retried.
   */
  readonly onApplied?: (events: readonly AnyEvent[], projection: string) => Promise<void> | void;
}

/** What {@link ProjectionRunner.status} reports. */
export interface ProjectionStatus {
  readonly name: string;
  readonly version: number;
  /** The checkpoint: the position of the last event applied. */
  readonly position: string;
  /** The position of the last event of the projection's types readable now (the checkpoint when none). */
  readonly head: string;
  /** Events of its types readable after the checkpoint (counted up to 10,000; see `lagCapped`). */
  readonly lagEvents: number;
  readonly lagCapped: boolean;
  /** Age of the oldest event not applied yet, in ms; 0 when caught up. */
  readonly lagMs: number;
  /** `running`: a runner holds a live lease; `idle`: none does; `stopped`: after a poison event. */
  readonly state: 'running' | 'idle' | 'stopped';
  readonly owner: string | null;
  /** `true` for the version that serves reads. */
  readonly active: boolean;
  readonly lastError: PoisonReport | null;
  /** This runner's loop of the projection: a beat per cycle (see {@link ProjectionRunner.heartbeat}). */
  readonly heartbeat: Heartbeat;
}

/** Written events a read can wait for: from {@link consistencyToken}. */
export interface ConsistencyToken {
  readonly events: readonly { readonly id: string; readonly type: string }[];
}

/** The token of events a command wrote, for {@link ProjectionRunner.waitFor} (read-your-writes). */
export function consistencyToken(events: readonly AnyEvent[]): ConsistencyToken {
  if (!Array.isArray(events)) throw new ConfigurationError('consistencyToken() takes the events written');
  return Object.freeze({
    events: Object.freeze(
      events.map((e) => {
        const id = e?.metadata?.requestId;
        if (e?.kind !== 'event' || typeof id !== 'string')
          throw new ConfigurationError('consistencyToken() takes events with a request id');
        return Object.freeze({ id, type: e.type });
      }),
    ),
  });
}

/**
 * Runs async projections: each reads the log from its checkpoint and applies a batch of events and the new
 * checkpoint in one transaction, so an event is applied to a read model in the store's database exactly once.
 * One runner per projection version holds its lease at a time, across processes; the lease's owner and the
 * checkpoint guard every batch, so a runner that lost its lease (paused, partitioned, killed) commits nothing.
 */
export interface ProjectionRunner extends AsyncDisposable {
  /** Starts a loop per projection in the background (idempotent). */
  start(): void;
  /** Stops the loops, waits for batches in flight and releases the leases it holds (also after `catchUp`). */
  stop(): Promise<void>;
  /**
   * Applies everything readable now, then resolves (for tests, scripts and rebuilds). Takes the leases; a
   * projection whose lease another runner holds is left out.
   * @returns the number of events applied (or scanned past) per projection name
   */
  catchUp(name?: string): Promise<Readonly<Record<string, number>>>;
  /** @throws ConfigurationError for a name this runner does not run */
  status(name: string): Promise<ProjectionStatus>;
  /**
   * The heartbeat of this runner's loop of a projection, read without touching the store or log: a beat per
   * finished cycle (`intervalMs` is `pollMs`). A loop that waits for another runner's lease still beats.
   * @throws ConfigurationError for a name this runner does not run
   */
  heartbeat(name: string): Heartbeat;
  /**
   * Resolves once this runner has applied every event of `token` the projection reads (at once for events of
   * other types). Only the runner that holds the lease sees the events: use it in that process.
   */
  waitFor(name: string, token: ConsistencyToken, options?: { readonly signal?: AbortSignal }): Promise<void>;
  /** Sets a stopped projection running again: the poison event is retried. */
  resume(name: string): Promise<void>;
  /**
   * Builds the read model again from the start of the log.
   * - `in-place`: truncate (the documents; `reset` of a batch projection) and replay, while reads see the model
   *   fill up again;
   * - side by side: run the projection's new `version` (N+1) from the start in its own tables while N serves,
   *   then call `activate` to switch reads to it: `rebuild(name, 'activate')` does both once it caught up.
   */
  rebuild(name: string, mode: 'in-place' | 'activate'): Promise<void>;
  /** Parked events of a projection (`onPoison: 'park'`). */
  parked(name: string): ReturnType<ProjectionStore<unknown>['parked']>;
  /**
   * The change feed of a projection in this process: `listener` gets each batch this runner commits, after
   * the commit, in order. Returns the unsubscribe function.
   */
  subscribe(name: string, listener: (change: ProjectionChange) => void): () => void;
  /**
   * Runs `read` while no batch of the projection commits in this runner, and returns its value with the
   * checkpoint it saw: the known position of a live query's first answer. Needs this runner to hold the lease.
   * @throws ConfigurationError when another runner holds the lease
   */
  readAt<TValue>(
    name: string,
    read: () => Promise<TValue> | TValue,
  ): Promise<{ readonly position: string; readonly value: TValue }>;
}

/** One committed batch of a projection, as its change feed delivers it. */
export interface ProjectionChange {
  readonly projection: string;
  /** The checkpoint after the batch. */
  readonly position: string;
  /** The batch's events, with their log positions. */
  readonly events: readonly { readonly position: string; readonly event: AnyEvent }[];
}

const LEASE_LOST = new Error('lease lost');
/** First wait before reading a log again that held events back (doubling up to {@link HELD_RECHECK_MAX_MS}). */
const HELD_RECHECK_MS = 5;
/**
 * The longest wait between reads while events stay held back (or `pollMs` when shorter). The transaction that
 * holds them may be anyone's (a report, a migration, another test): it ends unannounced, and a doubling wait
 * with no cap would leave committed events unapplied for up to `pollMs` after it did.
 */
const HELD_RECHECK_MAX_MS = 250;

interface Slot<TTx> {
  readonly def: AnyProjection<TTx>;
  readonly key: { readonly name: string; readonly version: number };
  held: boolean;
  /** Where the runner has read to: ahead of `stored` after a stretch of the log with none of its types. */
  position: string;
  /** The checkpoint as the store has it (what `advance` is guarded by), and when it was written. */
  stored: string;
  storedAt: number;
  leaseUntil: number;
  stopped: boolean;
  /**
   * The ids of the recently applied events (the ring), for waitFor; as a set once a waitFor asked (kept from then
   * on), so a runner nobody waits on does not hash every id.
   */
  seen: Set<string> | undefined;
  readonly ring: (string | undefined)[];
  next: number;
  readonly waiters: Map<string, (() => void)[]>;
  readonly listeners: Set<(change: ProjectionChange) => void>;
  loop: Promise<void> | undefined;
  busy: Promise<unknown>;
  readonly beat: HeartbeatRecorder;
}

const SEEN_MAX = 100_000;

/**
 * The longest a runner keeps to itself that it read past events of other types (its checkpoint row is written
 * with the next batch it applies, on `catchUp` and `stop`, else after this long).
 */
const IDLE_CHECKPOINT_MS = 5_000;

/**
 * Creates the runner of async projections over an event log and a projection store of the same database.
 * @throws ConfigurationError for malformed options or two projections with one name
 */
export function createProjectionRunner<TTx>(options: ProjectionRunnerOptions<TTx>): ProjectionRunner {
  const { log, store } = options ?? ({} as ProjectionRunnerOptions<TTx>);
  if (typeof log?.read !== 'function')
    throw new ConfigurationError('projection runner: log must be an event log');
  if (typeof store?.advance !== 'function' || typeof store.transaction !== 'function')
    throw new ConfigurationError('projection runner: store must be a projection store');
  const int = (v: unknown, d: number, min: number, max: number, what: string) => {
    const n = v ?? d;
    if (!Number.isSafeInteger(n) || (n as number) < min || (n as number) > max)
      throw new ConfigurationError(`projection runner: ${what} must be an integer from ${min} to ${max}`);
    return n as number;
  };
  const leaseMs = int(options.leaseMs, 30_000, 100, 86_400_000, 'leaseMs');
  const batchSize = int(options.batchSize, 500, 1, MAX_LOG_BATCH, 'batchSize');
  const pollMs = int(options.pollMs, 200, 1, 3_600_000, 'pollMs');
  const attempts = int(options.retry?.attempts, 5, 1, 1000, 'retry.attempts');
  const backoff = options.retry?.backoff ?? { initialMs: 100, maxMs: 5_000 };
  const owner = options.owner ?? uuidv7();
  if (typeof owner !== 'string' || owner.length === 0 || owner.length > 200)
    throw new ConfigurationError('projection runner: owner must be 1 to 200 characters');
  const now = options.now ?? Date.now;
  const logger = options.logger ?? noopLogger;
  const decoder = options.decoder ?? createLogDecoder();
  const onApplied = options.onApplied;
  if (onApplied !== undefined && typeof onApplied !== 'function')
    throw new ConfigurationError('projection runner: onApplied must be a function');
  if (!Array.isArray(options.projections) || options.projections.length === 0)
    throw new ConfigurationError('projection runner: projections must list at least one projection');
  const slots = new Map<string, Slot<TTx>>();
  for (const def of options.projections) {
    if (def?.style !== 'batch' && def?.style !== 'document')
      throw new ConfigurationError('projection runner: projections must come from defineProjection()');
    if (slots.has(def.name))
      throw new ConfigurationError(`projection runner: two projections named ${def.name}`);
    slots.set(def.name, {
      def,
      key: { name: def.name, version: def.version },
      held: false,
      position: '0',
      stored: '0',
      storedAt: 0,
      leaseUntil: 0,
      stopped: false,
      seen: undefined,
      ring: [],
      next: 0,
      waiters: new Map(),
      listeners: new Set(),
      loop: undefined,
      busy: Promise.resolve(),
      beat: createHeartbeat(pollMs, now),
    });
  }
  const slotOf = (name: string) => {
    const s = slots.get(name);
    if (s === undefined)
      throw new ConfigurationError(`projection runner: no projection named ${String(name)}`);
    return s;
  };

  let running = false;
  let abort = new AbortController();
  const sleepers = new Set<() => void>();
  /** Wake-ups so far: a loop that was busy when one came reads again instead of sleeping. */
  let wakes = 0;
  const wake = () => {
    wakes++;
    for (const s of sleepers) s();
  };
  const nap = (ms: number) =>
    new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        sleepers.delete(done);
        abort.signal.removeEventListener('abort', done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      sleepers.add(done);
      abort.signal.addEventListener('abort', done, { once: true });
    });

  const take = async (s: Slot<TTx>): Promise<boolean> => {
    if (s.held && s.leaseUntil - now() > leaseMs / 2) return true;
    if (s.held) {
      const at = now();
      if (await store.renew({ ...s.key, owner, now: at, leaseMs })) {
        s.leaseUntil = at + leaseMs;
        return true;
      }
      s.held = false;
    }
    const at = now();
    const row = await store.acquire({ ...s.key, owner, now: at, leaseMs });
    if (row === undefined) return false;
    adopt(s, row, at);
    return true;
  };
  const adopt = (s: Slot<TTx>, row: ProjectionCheckpoint, at: number) => {
    s.held = true;
    s.position = row.position;
    s.stored = row.position;
    s.storedAt = at;
    s.leaseUntil = at + leaseMs;
    s.stopped = row.state === 'stopped';
  };

  const contextOf = (s: Slot<TTx>, e: EventLogEntry): ProjectionContext => ({
    projection: s.key.name,
    version: s.key.version,
    position: e.position,
    streamId: e.streamId,
    streamVersion: e.streamVersion,
  });

  /** One transaction: the checkpoint from the stored one to `to`, then the events' writes. */
  const commit = async (
    s: Slot<TTx>,
    entries: readonly EventLogEntry[],
    events: readonly (AnyEvent | { readonly failed: unknown })[],
    to: string,
    extra?: (tx: TTx) => Promise<void>,
    oneByOne = false,
  ) => {
    const from = s.stored;
    const at = now();
    await store.transaction(async (tx) => {
      if (!(await store.advance(tx, { ...s.key, owner, now: at, leaseMs, from, to }))) throw LEASE_LOST;
      if (extra !== undefined) await extra(tx);
      await applyAll(s, tx, entries, events, oneByOne);
    });
    s.position = to;
    s.stored = to;
    s.storedAt = at;
    s.leaseUntil = at + leaseMs;
    for (const e of entries) seen(s, e.id);
    if (s.listeners.size > 0 && entries.length > 0) {
      const change: ProjectionChange = {
        projection: s.key.name,
        position: to,
        events: entries.map((e, i) => ({ position: e.position, event: events[i] as AnyEvent })),
      };
      for (const l of s.listeners) {
        try {
          l(change);
        } catch (error) {
          logger.warn(
            { projection: s.key.name, error: errorText(error) },
            'projection change listener failed',
          );
        }
      }
    }
    if (onApplied !== undefined && entries.length > 0) {
      try {
        await onApplied(events as readonly AnyEvent[], s.key.name);
      } catch (error) {
        logger.warn({ projection: s.key.name, error: errorText(error) }, 'projection onApplied failed');
      }
    }
  };

  const applyAll = (
    s: Slot<TTx>,
    tx: TTx,
    entries: readonly EventLogEntry[],
    events: readonly (AnyEvent | { readonly failed: unknown })[],
    oneByOne: boolean,
  ) =>
    applyProjection(
      s.def,
      store,
      tx,
      entries.map((e, i) => ({ event: events[i]!, context: contextOf(s, e) })),
      oneByOne,
    );

  const seen = (s: Slot<TTx>, id: string) => {
    // A ring of the last SEEN_MAX ids: the oldest leaves the set as a new one comes in.
    const old = s.ring[s.next];
    s.ring[s.next] = id;
    s.next = s.next + 1 === SEEN_MAX ? 0 : s.next + 1;
    if (s.seen !== undefined) {
      if (old !== undefined) s.seen.delete(old);
      s.seen.add(id);
    }
    if (s.waiters.size === 0) return;
    const w = s.waiters.get(id);
    if (w !== undefined) {
      s.waiters.delete(id);
      for (const f of w) f();
    }
  };

  const seenSet = (s: Slot<TTx>) => {
    if (s.seen === undefined) {
      s.seen = new Set();
      for (const id of s.ring) if (id !== undefined) s.seen.add(id);
    }
    return s.seen;
  };

  // The default decoder has nothing to await: no microtask per event.
  const decodeNow = synchronousLogDecode(decoder);

  const decode = async (entries: readonly EventLogEntry[]) => {
    const out: (AnyEvent | { failed: unknown })[] = [];
    for (const e of entries) {
      try {
        out.push(decodeNow !== undefined ? decodeNow(e) : await decoder.decode(e));
      } catch (failed) {
        out.push({ failed });
      }
    }
    return out;
  };

  const poison = async (s: Slot<TTx>, entry: EventLogEntry, error: unknown, tries: number) => {
    const policy = s.def.onPoison;
    const report: PoisonReport = {
      eventType: entry.type,
      eventId: entry.id,
      position: entry.position,
      error: errorText(error),
      attempts: tries,
      outcome: policy === 'stop' ? 'stopped' : policy === 'skip' ? 'skipped' : 'parked',
      at: now(),
    };
    logger.error({ projection: s.key.name, ...report }, 'projection poison event');
    if (policy === 'stop') {
      if (!(await store.report({ ...s.key, owner, error: JSON.stringify(report), stop: true })))
        throw LEASE_LOST;
      s.stopped = true;
      return;
    }
    await commit(s, [], [], entry.position, async (tx) => {
      if (policy === 'park')
        await store.park(tx, s.key, {
          eventId: entry.id,
          eventType: entry.type,
          position: entry.position,
          error: report.error,
          at: report.at,
        });
    });
    seen(s, entry.id);
    await store.report({ ...s.key, owner, error: JSON.stringify(report), stop: false });
  };

  /** Reads and applies one batch; resolves to the number of events consumed, or why nothing was. */
  const step = async (
    s: Slot<TTx>,
    signal: AbortSignal,
    storeIdle = false,
  ): Promise<number | 'blocked' | 'idle' | 'held' | 'stopped'> => {
    if (!(await take(s))) return 'blocked';
    if (s.stopped) return 'stopped';
    const batch = await log.read({ after: s.position, limit: batchSize, types: s.def.types });
    if (batch.entries.length === 0) {
      if (batch.position === s.position) {
        if (storeIdle && s.stored !== s.position) await commit(s, [], [], s.position);
        return batch.held === true ? 'held' : 'idle';
      }
      // Nothing of this projection's types: the runner reads on from there, and the checkpoint is written only
      // now and then (a runner that took over scans the stretch again and finds nothing to apply). Writing it
      // every time would keep an idle runner writing: on Postgres each commit moves the log's horizon, which the
      // next read reports as a new position.
      s.position = batch.position;
      if (storeIdle || now() - s.storedAt >= IDLE_CHECKPOINT_MS) await commit(s, [], [], batch.position);
      return 0;
    }
    let entries = batch.entries;
    let events = await decode(entries);
    let to = batch.position;
    let oneByOne = false;
    for (let tries = 1; ; ) {
      try {
        if (projectionBatchChannel.hasSubscribers) {
          const trace = { projection: s.key.name, from: s.position, to, size: entries.length };
          await projectionBatchChannel.tracePromise(
            () => commit(s, entries, events, to, undefined, oneByOne),
            trace,
          );
        } else await commit(s, entries, events, to, undefined, oneByOne);
        return entries.length;
      } catch (error) {
        if (error === LEASE_LOST) {
          s.held = false;
          return 'blocked';
        }
        if (!(error instanceof ApplyFailure)) throw error;
        if (!error.located) {
          // applyBatch failed: the same events again, one per call, to find the failing one (no retry spent).
          oneByOne = true;
          continue;
        }
        if (error.index > 0) {
          // Commit what precedes the failing event; the next step starts at it.
          entries = entries.slice(0, error.index);
          events = events.slice(0, error.index);
          to = entries.at(-1)!.position;
          continue;
        }
        if (tries >= attempts) {
          await poison(s, entries[0]!, error.cause, tries);
          return s.stopped ? 'stopped' : 1;
        }
        logger.warn(
          {
            projection: s.key.name,
            eventType: entries[0]!.type,
            eventId: entries[0]!.id,
            attempt: tries,
            error: errorText(error.cause),
          },
          'projection event failed; retrying',
        );
        const wait = backoffDelay(tries, backoff);
        s.beat.beat(wait); // a retry is a cycle: the loop is working, not stuck
        await sleepOrCancel(wait, signal);
        tries++;
        entries = entries.slice(0, 1);
        events = events.slice(0, 1);
        to = entries[0]!.position;
      }
    }
  };

  const sleepOrCancel = async (ms: number, signal: AbortSignal) => {
    if (signal.aborted) throw new CancelledError('projection');
    await nap(ms);
    if (signal.aborted) throw new CancelledError('projection');
  };

  /** Serializes the work of one slot (the loop, catchUp and rebuild never interleave). */
  const exclusive = <T>(s: Slot<TTx>, fn: () => Promise<T>): Promise<T> => {
    const run = s.busy.then(fn);
    s.busy = run.catch(() => undefined);
    return run;
  };

  const loop = async (s: Slot<TTx>, signal: AbortSignal) => {
    let failures = 0;
    let heldWait = 0;
    while (!signal.aborted) {
      s.beat.cycle();
      const seen = wakes;
      try {
        const r = await exclusive(s, () => step(s, signal));
        failures = 0;
        if (r !== 'held') heldWait = 0;
        const waiting = r === 'idle' || r === 'held' || r === 0;
        if ((typeof r === 'number' && r > 0) || (waiting && wakes !== seen)) {
          s.beat.beat(0);
          continue;
        }
        // Events held back by an open transaction come free with no wake-up: look again soon, then less often.
        if (r === 'held')
          heldWait = Math.min(heldWait === 0 ? HELD_RECHECK_MS : heldWait * 2, HELD_RECHECK_MAX_MS, pollMs);
        const wait = r === 'blocked' ? Math.min(pollMs * 5, leaseMs / 3) : r === 'held' ? heldWait : pollMs;
        s.beat.beat(wait);
        await nap(wait);
      } catch (error) {
        if (signal.aborted) break;
        failures++;
        logger.warn(
          { projection: s.key.name, error: errorText(error), failures },
          'projection runner step failed',
        );
        const wait = backoffDelay(failures, backoff);
        s.beat.beat(wait);
        await nap(wait);
      }
    }
  };

  let wakeStarted = false;
  const runner: ProjectionRunner = {
    start() {
      if (running) return;
      running = true;
      abort = new AbortController();
      const signal = abort.signal;
      if (options.wakeUp !== undefined && !wakeStarted) {
        wakeStarted = true;
        void Promise.resolve(options.wakeUp.start(wake)).catch((error: unknown) =>
          logger.warn({ error: errorText(error) }, 'projection runner: wake-up failed to start; polling'),
        );
      }
      for (const s of slots.values()) {
        s.beat.running(true);
        s.loop = loop(s, signal);
      }
    },
    async stop() {
      if (running) {
        running = false;
        for (const s of slots.values()) s.beat.running(false);
        abort.abort();
        wake();
        await Promise.all([...slots.values()].map((s) => s.loop));
      }
      if (wakeStarted) {
        wakeStarted = false;
        await options.wakeUp?.stop();
      }
      for (const s of slots.values()) {
        s.loop = undefined;
        if (s.held) {
          // what the runner read past without writing, written before the lease goes
          if (s.stored !== s.position) await commit(s, [], [], s.position).catch(() => undefined);
          s.held = false;
          await store.release({ ...s.key, owner }).catch(() => false);
        }
      }
    },
    async [Symbol.asyncDispose]() {
      await runner.stop();
    },
    async catchUp(name) {
      const chosen = name === undefined ? [...slots.values()] : [slotOf(name)];
      const out: Record<string, number> = {};
      for (const s of chosen) {
        let n = 0;
        for (;;) {
          const r = await exclusive(s, () => step(s, new AbortController().signal, true));
          if (typeof r !== 'number') break;
          n += r;
          if (r === 0) break;
        }
        out[s.key.name] = n;
      }
      return out;
    },
    async status(name) {
      const s = slotOf(name);
      const row = await store.load(s.key.name, s.key.version);
      const position = row?.position ?? '0';
      const batch = await log.read({ after: position, limit: MAX_LOG_BATCH, types: s.def.types });
      const at = now();
      const first = batch.entries[0];
      const live = row?.leaseOwner != null && (row.leaseUntil ?? 0) >= at;
      return {
        name: s.key.name,
        version: s.key.version,
        position,
        head: batch.entries.at(-1)?.position ?? position,
        lagEvents: batch.entries.length,
        lagCapped: batch.entries.length === MAX_LOG_BATCH,
        lagMs: first === undefined ? 0 : Math.max(0, at - first.createdAt),
        state: row?.state === 'stopped' ? 'stopped' : live ? 'running' : 'idle',
        owner: live ? row!.leaseOwner : null,
        active: row?.active ?? false,
        lastError: row?.error == null ? null : (JSON.parse(row.error) as PoisonReport),
        heartbeat: s.beat.read(),
      };
    },
    heartbeat: (name) => slotOf(name).beat.read(),
    waitFor(name, token, opts) {
      const s = slotOf(name);
      const events = token?.events;
      if (!Array.isArray(events))
        return Promise.reject(new ConfigurationError('waitFor() takes a consistency token'));
      const seenIds = seenSet(s);
      const pending = events.filter((e) => s.def.types.includes(e.type) && !seenIds.has(e.id));
      if (pending.length === 0) return Promise.resolve();
      return new Promise<void>((resolve, reject) => {
        let left = pending.length;
        const signal = opts?.signal;
        const onAbort = () => reject(new CancelledError(`waitFor ${name}`, { cause: signal?.reason }));
        if (signal?.aborted) return onAbort();
        signal?.addEventListener('abort', onAbort, { once: true });
        for (const e of pending) {
          const list = s.waiters.get(e.id) ?? [];
          list.push(() => {
            if (--left === 0) {
              signal?.removeEventListener('abort', onAbort);
              resolve();
            }
          });
          s.waiters.set(e.id, list);
        }
      });
    },
    async resume(name) {
      const s = slotOf(name);
      await store.resume(s.key);
      s.stopped = false;
      s.held = false;
      wake();
    },
    async rebuild(name, mode) {
      const s = slotOf(name);
      if (mode === 'in-place') {
        await exclusive(s, async () => {
          if (!(await take(s)))
            throw new ConfigurationError(`${name}: another runner holds the lease; stop it first`);
          const at = now();
          await store.transaction(async (tx) => {
            if (!(await store.restart(tx, { ...s.key, owner }))) throw LEASE_LOST;
            await store.clear(tx, s.key);
            if (s.def.style === 'batch' && s.def.reset !== undefined) await s.def.reset(tx, s.key.version);
          });
          s.position = '0';
          s.stored = '0';
          s.storedAt = at;
          s.stopped = false;
          s.leaseUntil = at + leaseMs;
          s.seen?.clear();
          s.ring.length = 0;
          s.next = 0;
        });
        await runner.catchUp(name);
        return;
      }
      if (mode === 'activate') {
        await runner.catchUp(name);
        await store.activate(s.key);
        return;
      }
      throw new ConfigurationError(`rebuild(): mode must be 'in-place' or 'activate'`);
    },
    parked(name) {
      return store.parked(slotOf(name).key);
    },
    subscribe(name, listener) {
      const s = slotOf(name);
      if (typeof listener !== 'function')
        throw new ConfigurationError('subscribe() takes a listener function');
      s.listeners.add(listener);
      return () => {
        s.listeners.delete(listener);
      };
    },
    readAt(name, read) {
      const s = slotOf(name);
      if (typeof read !== 'function')
        return Promise.reject(new ConfigurationError('readAt() takes a function'));
      return exclusive(s, async () => {
        if (!(await take(s)))
          throw new ConfigurationError(`${name}: another runner holds the lease; read where it runs`);
        const position = s.position;
        return { position, value: await read() };
      });
    },
  };
  return runner;
}
