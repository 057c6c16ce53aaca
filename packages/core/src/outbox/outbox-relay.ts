import { randomUUID } from 'node:crypto';
import type { MessagePublisher, OutboxMessage, PublishResult } from '../broker/message-publisher.ts';
import { BrokerError } from '../errors/broker-error.ts';
import { ConfigurationError, isCqrsError } from '../errors/cqrs-error.ts';
import { isUnavailableError } from '../errors/unavailable.ts';
import type { BackoffOptions } from '../shared/backoff.ts';
import { backoffDelay } from '../shared/backoff.ts';
import { errorText } from '../shared/error-text.ts';
import type { Heartbeat } from '../shared/heartbeat.ts';
import { createHeartbeat } from '../shared/heartbeat.ts';
import type { Logger } from '../shared/logger.ts';
import { noopLogger } from '../shared/logger.ts';
import { relayPublishChannel } from '../shared/tracing.ts';
import { decodeOutboxRecord } from './outbox-codec.ts';
import type { OutboxRecord } from './outbox-record.ts';
import type { OutboxFailure, OutboxStore } from './outbox-store.ts';

/** Something that tells the relay "new rows were appended", e.g. Postgres LISTEN/NOTIFY. */
export interface OutboxWakeUp {
  /** Starts listening; `wake` may be called any number of times, also spuriously. */
  start(wake: () => void): Promise<void> | void;
  stop(): Promise<void> | void;
}

/** Retention of finished rows, applied by the relay every `intervalMs`. */
export interface OutboxRetentionOptions {
  /** Published rows older than this are deleted. */
  readonly publishedMs: number;
  /** Dead rows older than this are deleted; kept forever when omitted. */
  readonly deadMs?: number;
  /** @default 60000 */
  readonly intervalMs?: number;
}

/**
 * How the relay behaves while the broker is unreachable. A publish that fails because the destination is down
 * (see `isUnavailable`) opens the circuit: the failed rows are handed back untouched (no attempt is counted, no
 * backoff is written), and publishing pauses. While open, the relay probes the broker with a batch of one row,
 * first after `probeIntervalMs`, then at growing intervals up to `maxProbeIntervalMs`, and at once when the
 * publisher reports the broker reachable again (`MessagePublisher.onAvailable`, e.g. its client reconnected); the
 * first probe that gets through closes the circuit and the backlog drains at full speed at once.
 */
export interface OutboxCircuitOptions {
  /** Wait before the first probe after the circuit opens, in ms. @default 200 */
  readonly probeIntervalMs?: number;
  /** Longest wait between probes (the wait doubles per failed probe), in ms. @default 1000 */
  readonly maxProbeIntervalMs?: number;
  /**
   * Which publish errors mean "the destination is down" rather than "this message is bad".
   * @default isUnavailableError (connection lost, timeouts, broker unavailable), plus a `BrokerError` of scope
   *   `setup` (a topology conflict fails every message until it is fixed)
   */
  readonly isUnavailable?: (error: unknown) => boolean;
}

/**
 * The relay's default: the destination is down ({@link isUnavailableError}), or the broker setup is wrong (a
 * `BrokerError` of scope `setup`, e.g. a topology conflict), which fails every message alike until someone fixes
 * it: better paused than every row dead.
 */
function brokerUnusable(error: unknown): boolean {
  return isUnavailableError(error) || scopeOf(error) === 'setup';
}

const scopeOf = (error: unknown): unknown =>
  isCqrsError(error, 'CQRS_BROKER') ? (error as { scope?: unknown }).scope : undefined;

/** Options of {@link createOutboxRelay}. */
export interface OutboxRelayOptions {
  readonly store: OutboxStore<never>;
  readonly publisher: MessagePublisher;
  /** Stored as `claimed_by`. @default a random UUID */
  readonly relayId?: string;
  /** @default 100 */
  readonly batchSize?: number;
  /** Wait up to this long for a partly filled batch to fill, measured from its oldest record. @default 0 */
  readonly maxBatchAgeMs?: number;
  /** Sleep between polls when there is nothing to do (a wake-up cuts it short). @default 1000 */
  readonly pollIntervalMs?: number;
  /** Lease on claimed rows; a crashed relay's rows are reclaimed after it. @default 30000 */
  readonly leaseMs?: number;
  /**
   * `lease`: claim rows with a lease (one write), publish, then mark them (a second write); a crashed relay's
   * rows wait for the lease to expire. `transaction`: lock rows in a database transaction held while
   * publishing and mark them in it (one write per row; a crash rolls back at once), which needs
   * `store.processLocked`. `auto`: `transaction` when the store supports it. Prefer `lease` when publishing can
   * take long (a slow broker keeps the transaction, and a connection, open). @default 'auto'
   */
  readonly mode?: 'auto' | 'lease' | 'transaction';
  /**
   * Failed attempts before a row goes to `dead`. Only failures about the message itself count; a broker that is
   * down opens the circuit instead (see `circuit`). @default 10
   */
  readonly maxAttempts?: number;
  /** Backoff between attempts of one row (message-level failures). @default { initialMs: 500, maxMs: 60000, factor: 2 } */
  readonly backoff?: BackoffOptions;
  /** Pausing and probing while the broker is unreachable. */
  readonly circuit?: OutboxCircuitOptions;
  readonly retention?: OutboxRetentionOptions;
  readonly wakeUp?: OutboxWakeUp;
  /** Health reports `stalled` when there is a backlog and nothing was published for this long. @default 60000 */
  readonly stalledAfterMs?: number;
  /** Graceful stop waits this long for the in-flight batch, then aborts the publish. @default 10000 */
  readonly stopTimeoutMs?: number;
  /**
   * Longest wait for one `publisher.publish` call to settle. Past it the call's signal is aborted and its messages
   * count as a broker timeout (`BrokerError` reason `timeout`, the destination is down): the rows are handed back
   * untouched and the circuit opens, so a publish that never settles (a client stuck across a reconnect) cannot
   * stall the relay, or hold its transaction, for ever. @default 60000
   */
  readonly publishTimeoutMs?: number;
  readonly logger?: Logger;
  /** Clock, epoch ms. @default Date.now */
  readonly now?: () => number;
}

/**
 * State of the relay's circuit: `closed` publishes normally, `open` pauses (the broker is unreachable),
 * `half-open` is probing with one row.
 */
export type OutboxCircuitState = 'closed' | 'open' | 'half-open';

/** What {@link OutboxRelay.health} reports. */
export interface OutboxRelayHealth {
  readonly running: boolean;
  readonly backlog: number;
  readonly oldestPendingAgeMs: number;
  readonly dead: number;
  /** Epoch ms of the last successful publish, `undefined` if none yet. */
  readonly lastPublishedAt: number | undefined;
  /** `open` while the broker is unreachable and publishing is paused; see {@link OutboxCircuitOptions}. */
  readonly circuit: OutboxCircuitState;
  /** Epoch ms since which the broker has been unreachable (circuit not closed), `undefined` when it is reachable. */
  readonly unavailableSince: number | undefined;
  /** Rows this relay moved to `dead` because it could not read or decode them (since it was created). */
  readonly quarantined: number;
  /**
   * The most recent problem (storage failure, unreachable broker, failed publish, quarantined row), kept after
   * recovery; `lastErrorAt` says when. `undefined` if there was none.
   */
  readonly lastError: string | undefined;
  /** Epoch ms of `lastError`. */
  readonly lastErrorAt: number | undefined;
  /** Backlog but no publish for `stalledAfterMs` (also while the circuit is open). */
  readonly stalled: boolean;
  /** The loop's heartbeat: one beat per cycle of the background loop (see {@link OutboxRelay.heartbeat}). */
  readonly heartbeat: Heartbeat;
}

/** Result of one {@link OutboxRelay.runOnce}. */
export interface OutboxRunResult {
  readonly claimed: number;
  readonly published: number;
  /** Rows whose publish failed for a reason of their own (an attempt was counted, or they went to `dead`). */
  readonly failed: number;
  /** Rows handed back untouched: later rows of a failed key, and rows the unreachable broker did not take. */
  readonly released: number;
  /** Rows moved to `dead` because they could not be read or decoded. */
  readonly quarantined: number;
}

/**
 * Moves outbox rows to a broker: claim a batch (leased, per-key ordered), publish, record the outcome with
 * one statement per outcome kind. Delivery is at least once; pair consumers with the inbox to dedupe.
 * An event is never published before an earlier pending event with the same key: after a failure the later
 * events of that key in the batch are released, not published. A dead row stops blocking its key.
 *
 * Outages: a broker that cannot be reached opens the circuit (no attempt is counted, nothing goes to `dead`)
 * and the relay probes until it is back, so per-key order holds across an outage of any length. A row that
 * cannot be read or decoded (headers not a JSON object, bad payload encoding, unknown compression) is
 * quarantined: moved to `dead` with the reason, and the rows after it flow.
 */
export interface OutboxRelay extends AsyncDisposable {
  readonly relayId: string;
  /** Starts the background loop; it survives storage and broker outages by backing off. */
  start(): void;
  /** Stops the loop after the in-flight batch is finished (or released after `stopTimeoutMs`). */
  stop(): Promise<void>;
  /** One claim/publish/mark cycle; for tests and custom schedulers. Throws storage errors. */
  runOnce(): Promise<OutboxRunResult>;
  /** Applies `retention` now; returns rows deleted. */
  purgeNow(): Promise<number>;
  health(): Promise<OutboxRelayHealth>;
  /**
   * The background loop's heartbeat, read without touching the store (so it answers while the store hangs):
   * a beat per finished cycle, with the time the next cycle is due (`intervalMs` is `pollIntervalMs`).
   */
  heartbeat(): Heartbeat;
}

const EMPTY_RESULT: OutboxRunResult = Object.freeze({
  claimed: 0,
  published: 0,
  failed: 0,
  released: 0,
  quarantined: 0,
});

function positive(name: string, value: number, min = 1): number {
  if (!Number.isFinite(value) || value < min)
    throw new ConfigurationError(`outbox relay: ${name} must be >= ${min}`);
  return value;
}

/**
 * Creates a relay. Call `start()` for the background loop, or drive it with `runOnce()`.
 * @throws ConfigurationError (`CQRS_CONFIGURATION`) for a missing store or publisher and out-of-range options.
 */
export function createOutboxRelay(options: OutboxRelayOptions): OutboxRelay {
  const { store, publisher } = options;
  if (!store || typeof store.claimBatch !== 'function')
    throw new ConfigurationError('outbox relay: store is required');
  if (!publisher || typeof publisher.publish !== 'function') {
    throw new ConfigurationError('outbox relay: publisher is required');
  }
  const relayId = options.relayId ?? randomUUID();
  const batchSize = positive('batchSize', options.batchSize ?? 100);
  const maxBatchAgeMs = positive('maxBatchAgeMs', options.maxBatchAgeMs ?? 0, 0);
  const pollIntervalMs = positive('pollIntervalMs', options.pollIntervalMs ?? 1000);
  const leaseMs = positive('leaseMs', options.leaseMs ?? 30_000);
  const maxAttempts = positive('maxAttempts', options.maxAttempts ?? 10);
  const backoff: BackoffOptions = options.backoff ?? { initialMs: 500, maxMs: 60_000, factor: 2 };
  const stalledAfterMs = options.stalledAfterMs ?? 60_000;
  const stopTimeoutMs = options.stopTimeoutMs ?? 10_000;
  const publishTimeoutMs = positive('publishTimeoutMs', options.publishTimeoutMs ?? 60_000);
  const retention = options.retention;
  const logger = options.logger ?? noopLogger;
  const now = options.now ?? Date.now;
  const maxPublish = publisher.capabilities.maxBatchSize ?? Number.POSITIVE_INFINITY;
  const mode = options.mode ?? 'auto';
  if (mode !== 'auto' && mode !== 'lease' && mode !== 'transaction') {
    throw new ConfigurationError(`outbox relay: unknown mode ${String(mode)}`);
  }
  if (mode === 'transaction' && typeof store.processLocked !== 'function') {
    throw new ConfigurationError('outbox relay: mode "transaction" needs a store with processLocked');
  }
  const locked = mode !== 'lease' && typeof store.processLocked === 'function';
  const overlap = locked && store.overlapsLocked === true;
  const circuitOptions = options.circuit ?? {};
  const probeIntervalMs = positive('circuit.probeIntervalMs', circuitOptions.probeIntervalMs ?? 200);
  const maxProbeIntervalMs = positive(
    'circuit.maxProbeIntervalMs',
    circuitOptions.maxProbeIntervalMs ?? Math.max(1000, probeIntervalMs),
    probeIntervalMs,
  );
  const isUnavailable = circuitOptions.isUnavailable ?? brokerUnusable;
  if (typeof isUnavailable !== 'function') {
    throw new ConfigurationError('outbox relay: circuit.isUnavailable must be a function');
  }
  const unavailable = (error: unknown): boolean => {
    try {
      return isUnavailable(error) === true;
    } catch {
      return false;
    }
  };

  let running = false;
  let loop: Promise<void> | undefined;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let wakeResolve: (() => void) | undefined;
  let stopResolve: (() => void) | undefined;
  let woken = false;
  let publishAbort = new AbortController();
  let lastPublishedAt: number | undefined;
  let lastProgressAt = now();
  let lastError: string | undefined;
  let lastErrorAt: number | undefined;
  let lastPurgeAt = 0;
  let circuit: OutboxCircuitState = 'closed';
  let unavailableSince: number | undefined;
  let failedProbes = 0;
  let nextProbeAt = 0;
  let quarantined = 0;
  let stopListening: (() => void) | undefined;
  const beat = createHeartbeat(pollIntervalMs, now);

  const noteError = (text: string) => {
    lastError = text;
    lastErrorAt = now();
  };

  const wake = () => {
    woken = true;
    const r = wakeResolve;
    if (r) {
      wakeResolve = undefined;
      stopResolve = undefined;
      clearTimeout(timer);
      r();
    }
  };

  /** The publisher says the broker may be back: an open circuit probes now instead of at its next probe time. */
  const available = () => {
    if (circuit !== 'open') return;
    nextProbeAt = now();
    stopResolve?.();
  };

  /** Sleeps `ms`; a wake-up cuts it short only when `wakeable` (the circuit's waits ignore new rows). */
  const idle = (ms: number, wakeable = true) =>
    new Promise<void>((resolve) => {
      if (!running || (wakeable && woken)) {
        if (wakeable) woken = false;
        resolve();
        return;
      }
      const done = () => {
        wakeResolve = undefined;
        stopResolve = undefined;
        clearTimeout(timer);
        resolve();
      };
      if (wakeable) wakeResolve = done;
      stopResolve = done;
      timer = setTimeout(done, Math.max(0, ms));
    });

  function openCircuit(error: unknown): void {
    const t = now();
    if (circuit === 'closed') {
      unavailableSince = t;
      failedProbes = 0;
      logger.warn({ relayId, error: errorText(error) }, 'outbox broker unreachable; publishing paused');
    } else failedProbes++;
    circuit = 'open';
    nextProbeAt = t + Math.min(maxProbeIntervalMs, probeIntervalMs * 2 ** Math.min(failedProbes, 30));
    noteError(errorText(error));
  }

  function closeCircuit(): void {
    if (circuit === 'closed') return;
    logger.info(
      { relayId, downMs: unavailableSince === undefined ? 0 : now() - unavailableSince },
      'outbox broker reachable again; publishing resumed',
    );
    circuit = 'closed';
    unavailableSince = undefined;
    failedProbes = 0;
  }

  /** Publishes in chunks of `maxPublish`; stops after a chunk the broker did not take (the rest stay undefined). */
  async function send(messages: readonly OutboxMessage[]): Promise<(PublishResult | undefined)[]> {
    if (messages.length <= maxPublish) return callPublisher(messages);
    const out: (PublishResult | undefined)[] = new Array(messages.length);
    for (let i = 0; i < messages.length; i += maxPublish) {
      const results = await callPublisher(messages.slice(i, i + maxPublish));
      let down = false;
      for (let j = 0; j < results.length; j++) {
        const r = results[j]!;
        out[i + j] = r;
        if (!r.ok && !down && unavailable(r.error)) down = true;
      }
      if (down) break;
    }
    return out;
  }

  async function callPublisher(messages: readonly OutboxMessage[]): Promise<PublishResult[]> {
    // One controller per call: aborted by a stop (publishAbort) or when the call outlives publishTimeoutMs.
    const call = new AbortController();
    const stopping = publishAbort.signal;
    const onStop = () => call.abort(stopping.reason);
    if (stopping.aborted) onStop();
    else stopping.addEventListener('abort', onStop, { once: true });
    let timer: ReturnType<typeof setTimeout> | undefined;
    const expired = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), publishTimeoutMs);
    });
    try {
      const pending = relayPublishChannel.hasSubscribers
        ? publishTraced(messages, call.signal)
        : publisher.publish(messages, { signal: call.signal });
      const results = await Promise.race([pending, expired]);
      if (results === 'timeout') {
        pending.then(undefined, () => undefined); // settles (or not) after the relay moved on
        const error = new BrokerError(
          'timeout',
          `outbox relay: publish of ${messages.length} messages did not settle within ${publishTimeoutMs} ms`,
        );
        call.abort(error);
        return messages.map(() => ({ ok: false, error, retryable: true }));
      }
      if (results.length !== messages.length) {
        const error = new Error(
          `publisher returned ${results.length} results for ${messages.length} messages`,
        );
        return messages.map(() => ({ ok: false, error }));
      }
      return results as PublishResult[];
    } catch (error) {
      return messages.map(() => ({ ok: false, error }));
    } finally {
      clearTimeout(timer);
      stopping.removeEventListener('abort', onStop);
    }
  }

  function publishTraced(
    messages: readonly OutboxMessage[],
    signal: AbortSignal,
  ): Promise<readonly PublishResult[]> {
    const carriers: Record<string, string>[] = messages.map(() => ({}));
    return relayPublishChannel.tracePromise(
      () => publisher.publish(withCarriers(messages, carriers), { signal }),
      { relayId, messages, carriers },
    );
  }

  /** Publishes honouring key order; fills `outcome` (undefined = released). */
  async function publishOrdered(
    messages: OutboxMessage[],
    outcome: (PublishResult | undefined)[],
  ): Promise<void> {
    if (publisher.capabilities.preservesKeyOrder) {
      const results = await send(messages);
      const failedKeys = new Set<string>();
      for (let i = 0; i < messages.length; i++) {
        const key = messages[i]!.key;
        if (key !== null && failedKeys.has(key)) continue; // released: an earlier one of its key failed
        const r = results[i];
        if (r === undefined) continue; // not sent: the broker became unreachable
        outcome[i] = r;
        if (!r.ok && key !== null) failedKeys.add(key);
      }
      return;
    }
    // Waves: at most one message per key per publish call.
    let pending = messages.map((_, i) => i);
    const failedKeys = new Set<string>();
    while (pending.length > 0) {
      const wave: number[] = [];
      const rest: number[] = [];
      const seen = new Set<string>();
      for (const i of pending) {
        const key = messages[i]!.key;
        if (key !== null && failedKeys.has(key)) continue;
        if (key !== null && seen.has(key)) rest.push(i);
        else {
          if (key !== null) seen.add(key);
          wave.push(i);
        }
      }
      if (wave.length === 0) break;
      const results = await send(wave.map((i) => messages[i]!));
      let down = false;
      for (let j = 0; j < wave.length; j++) {
        const i = wave[j]!;
        const r = results[j];
        if (r === undefined) {
          down = true;
          continue;
        }
        outcome[i] = r;
        const key = messages[i]!.key;
        if (!r.ok) {
          if (key !== null) failedKeys.add(key);
          if (!down && unavailable(r.error)) down = true;
        }
      }
      if (down) break;
      pending = rest;
    }
  }

  async function claim(limit: number, mayWait: boolean): Promise<readonly OutboxRecord[]> {
    let records = await store.claimBatch({ relayId, limit, leaseMs, now: now() });
    if (mayWait && maxBatchAgeMs > 0 && records.length > 0 && records.length < limit) {
      const age = now() - records[0]!.createdAt;
      if (age < maxBatchAgeMs && running) {
        await idle(maxBatchAgeMs - age);
        const more = await store.claimBatch({
          relayId,
          limit: limit - records.length,
          leaseMs,
          now: now(),
        });
        if (more.length > 0) records = [...records, ...more].sort((a, b) => a.seq - b.seq);
      }
    }
    return records;
  }

  interface Outcome {
    readonly published: string[];
    readonly failures: OutboxFailure[];
    readonly released: string[];
    /** Rows among `failures` that could not be read (the first ones). */
    readonly quarantined: number;
    /** The first error that said the broker is unreachable, if any. */
    readonly down: unknown;
    readonly at: number;
  }

  /**
   * Decodes and publishes `records`, sorting each into published, failed (counted), quarantined (dead: it could
   * not be read) or released (untouched: a later row of a failed key, or one the unreachable broker did not take).
   */
  async function publishRecords(records: readonly OutboxRecord[]): Promise<Outcome> {
    const n = records.length;
    const t0 = now();
    const outcome: (PublishResult | undefined)[] = new Array(n);
    const messages: OutboxMessage[] = [];
    const messageIndex: number[] = [];
    const failures: OutboxFailure[] = [];
    const unreadable: boolean[] = new Array(n);
    let quarantinedRows = 0;
    for (let i = 0; i < n; i++) {
      const record = records[i]!;
      try {
        messages.push(decodeOutboxRecord(record));
        messageIndex.push(i);
      } catch (error) {
        unreadable[i] = true;
        quarantinedRows++;
        failures.push({
          id: record.id,
          error: `unreadable row (seq ${record.seq}): ${errorText(error)}`,
          dead: true,
          nextAttemptAt: t0,
        });
      }
    }
    if (messages.length > 0) {
      const sub: (PublishResult | undefined)[] = new Array(messages.length);
      await publishOrdered(messages, sub);
      for (let j = 0; j < messages.length; j++) outcome[messageIndex[j]!] = sub[j];
    }
    const published: string[] = [];
    const released: string[] = [];
    let down: unknown;
    const t = now();
    for (let i = 0; i < n; i++) {
      if (unreadable[i]) continue;
      const record = records[i]!;
      const r = outcome[i];
      if (r === undefined || (!r.ok && (publishAbort.signal.aborted || scopeOf(r.error) === 'none'))) {
        released.push(record.id); // not attempted (skipped behind its key, cancelled): unchanged
      } else if (r.ok) published.push(record.id);
      else if (unavailable(r.error)) {
        // the broker is down, not the message: hand it back untouched, its attempts unspent
        if (down === undefined) down = r.error ?? new Error('broker unreachable');
        released.push(record.id);
      } else {
        const attempts = record.attempts + 1;
        failures.push({
          id: record.id,
          error: errorText(r.error),
          dead: r.retryable === false || attempts >= maxAttempts,
          nextAttemptAt: t + backoffDelay(attempts, backoff),
        });
      }
    }
    return { published, failures, released, quarantined: quarantinedRows, down, at: t };
  }

  /** Counts a written outcome and moves the circuit. */
  function recordOutcome(o: Outcome, claimed: number): OutboxRunResult {
    if (o.published.length > 0) {
      lastPublishedAt = o.at;
      lastProgressAt = o.at;
    }
    const failed = o.failures.length - o.quarantined;
    if (o.quarantined > 0) {
      quarantined += o.quarantined;
      const first = o.failures[0]!;
      noteError(first.error);
      logger.error(
        { relayId, quarantined: o.quarantined, id: first.id, error: first.error },
        'outbox rows quarantined (moved to dead): they cannot be read',
      );
    }
    if (failed > 0) {
      const first = o.failures[o.quarantined]!;
      noteError(first.error);
      logger.warn({ relayId, failed, firstError: first.error }, 'outbox publish failed');
    }
    if (o.down !== undefined) openCircuit(o.down);
    else if (circuit !== 'closed' && (o.published.length > 0 || failed > 0)) closeCircuit();
    return {
      claimed,
      published: o.published.length,
      failed,
      released: o.released.length,
      quarantined: o.quarantined,
    };
  }

  /**
   * One locked cycle. After `previous` (the background loop's cycle before it, still publishing or committing):
   * the rows `previous` locked block nothing for this lock; this batch is published only once `previous` went out
   * whole (else it rolls back untouched: a later row of a key that failed may be among its rows), and committed
   * only after `previous` committed (had that failed, its rows are pending again, due before these).
   */
  async function runLocked(
    limit: number,
    mayWait: boolean,
    previous?: Cycle,
    hooks?: {
      /** The batch is about to be published. */
      publishing(records: readonly OutboxRecord[]): void;
      /** It was published (the outcome is not committed yet). */
      published(outcome: Outcome): void;
    },
  ): Promise<OutboxRunResult> {
    const processLocked = store.processLocked!.bind(store);
    let done: { outcome: Outcome; claimed: number } | undefined;
    let waitMs = 0;
    const attempt = (wait: boolean) =>
      processLocked(
        { limit, now: now(), ...(previous === undefined ? {} : { committing: previous.seqs }) },
        async (records) => {
          if (records.length === 0) return undefined;
          if (wait && maxBatchAgeMs > 0 && records.length < limit && running) {
            const age = now() - records[0]!.createdAt;
            if (age < maxBatchAgeMs) {
              waitMs = maxBatchAgeMs - age;
              return undefined; // roll back, let the batch fill, then take it
            }
          }
          if (previous !== undefined && !(await previous.whole)) return undefined;
          hooks?.publishing(records);
          const o = await publishRecords(records);
          hooks?.published(o);
          if (previous !== undefined && !(await previous.committed)) return undefined;
          done = { outcome: o, claimed: records.length };
          return { published: o.published, failures: o.failures, publishedAt: o.at };
        },
      );
    await attempt(mayWait);
    if (waitMs > 0) {
      await idle(waitMs);
      await attempt(false);
    }
    // Counted only once committed: a failed commit leaves the rows pending and throws above.
    return done === undefined ? EMPTY_RESULT : recordOutcome(done.outcome, done.claimed);
  }

  /** A locked cycle of the background loop, see {@link startLocked}. */
  interface Cycle {
    /** Seqs of the rows it locked, once it publishes them. */
    seqs: readonly number[];
    /** Resolves to `true` once it publishes a full batch (the next cycle may start), else `false` once settled. */
    readonly full: Promise<boolean>;
    /** Resolves once published: whether every row went out (published or quarantined, the broker reachable). */
    readonly whole: Promise<boolean>;
    /** Whether it committed; never rejects. */
    readonly committed: Promise<boolean>;
    /** Its counted result; rejects with its storage error. */
    readonly done: Promise<OutboxRunResult>;
  }

  /**
   * Starts a locked cycle of the background loop after `previous`, on a store with `overlapsLocked`: while a
   * backlog drains, the next batch is locked while this one publishes, and published while this one commits.
   */
  function startLocked(previous: Cycle | undefined): Cycle {
    let full: (value: boolean) => void = () => {};
    let whole: (value: boolean) => void = () => {};
    const cycle: { -readonly [K in keyof Cycle]: Cycle[K] } = {
      seqs: [],
      full: new Promise<boolean>((resolve) => {
        full = resolve;
      }),
      whole: new Promise<boolean>((resolve) => {
        whole = resolve;
      }),
      committed: Promise.resolve(false),
      done: Promise.resolve(EMPTY_RESULT),
    };
    const done = runLocked(batchSize, previous === undefined, previous, {
      publishing(records) {
        cycle.seqs = records.map((r) => r.seq);
        full(records.length >= batchSize);
      },
      published(o) {
        whole(o.down === undefined && o.released.length === 0 && o.failures.length === o.quarantined);
      },
    });
    const settle = () => {
      full(false);
      whole(false);
    };
    done.then(settle, settle);
    cycle.done = done;
    cycle.committed = done.then(
      (r) => r.claimed > 0,
      () => false,
    );
    return cycle;
  }

  async function runOnce(): Promise<OutboxRunResult> {
    let probing = false;
    if (circuit !== 'closed') {
      if (now() < nextProbeAt) return EMPTY_RESULT;
      circuit = 'half-open';
      probing = true;
    }
    const limit = probing ? 1 : batchSize;
    if (locked) return runLocked(limit, !probing);
    const records = await claim(limit, !probing);
    if (records.length === 0) return EMPTY_RESULT;
    const o = await publishRecords(records);
    if (o.published.length > 0) await store.markPublished(o.published, o.at);
    if (o.failures.length > 0) await store.markFailed(o.failures);
    if (o.released.length > 0) await store.release(o.released);
    return recordOutcome(o, records.length);
  }

  async function purgeNow(): Promise<number> {
    if (!retention) return 0;
    const t = now();
    lastPurgeAt = t;
    return store.purge({
      publishedBefore: t - retention.publishedMs,
      ...(retention.deadMs === undefined ? {} : { deadBefore: t - retention.deadMs }),
    });
  }

  async function run(): Promise<void> {
    let errors = 0;
    // While a backlog drains: the cycle publishing, whose successor locks meanwhile.
    let ahead: Cycle | undefined;
    while (running) {
      beat.cycle();
      if (circuit === 'open') {
        const wait = nextProbeAt - now();
        beat.beat(wait);
        await idle(wait, false);
        if (!running) break;
        beat.cycle();
      }
      const probing = circuit !== 'closed';
      let result = EMPTY_RESULT;
      try {
        if (overlap && !probing) {
          const previous = ahead;
          ahead = undefined;
          const cycle = startLocked(previous);
          const full = await cycle.full;
          let before: OutboxRunResult | undefined;
          if (previous !== undefined) {
            try {
              before = await previous.done;
            } catch (error) {
              await cycle.done.catch(() => undefined); // it rolls back by itself: it commits only after `previous`
              throw error;
            }
          }
          if (full && running) {
            ahead = cycle;
            beat.beat(0);
            continue;
          }
          result = await cycle.done;
          // rolled back behind a batch that did not go out whole: the loop goes on as after that batch
          if (result === EMPTY_RESULT && before !== undefined) result = before;
        } else result = await runOnce();
        if (retention && now() - lastPurgeAt >= (retention.intervalMs ?? 60_000)) await purgeNow();
        errors = 0;
      } catch (error) {
        errors++;
        noteError(errorText(error));
        logger.error({ relayId, error: lastError }, 'outbox relay iteration failed');
        const wait = Math.min(backoffDelay(errors, { initialMs: 100, maxMs: pollIntervalMs * 5 }), 30_000);
        beat.beat(wait);
        await idle(wait);
        continue;
      }
      if (circuit === 'open') continue; // wait for the next probe (the beat is recorded there)
      if (
        !(probing && circuit === 'closed') && // the broker is back: drain at once
        (result.claimed < batchSize || result.published + result.quarantined === 0)
      ) {
        beat.beat(pollIntervalMs);
        await idle(pollIntervalMs);
      } else beat.beat(0);
    }
    if (ahead !== undefined) {
      await ahead.done.catch((error: unknown) => {
        noteError(errorText(error));
        logger.error({ relayId, error: lastError }, 'outbox relay iteration failed');
      });
    }
  }

  const relay: OutboxRelay = {
    relayId,
    start() {
      if (running) return;
      running = true;
      woken = false;
      publishAbort = new AbortController();
      lastProgressAt = now();
      beat.running(true);
      try {
        stopListening = publisher.onAvailable?.(available);
      } catch (error) {
        logger.error({ relayId, error: errorText(error) }, 'outbox publisher onAvailable failed');
      }
      const started = options.wakeUp?.start(wake);
      loop = Promise.resolve(started)
        .catch((error: unknown) =>
          logger.error({ relayId, error: errorText(error) }, 'outbox wake-up failed'),
        )
        .then(run);
    },
    async stop() {
      if (!running) return;
      running = false;
      beat.running(false);
      stopResolve?.();
      wake();
      const abortTimer = setTimeout(
        () => publishAbort.abort(new Error('outbox relay stopping')),
        stopTimeoutMs,
      );
      try {
        await loop;
      } finally {
        clearTimeout(abortTimer);
        loop = undefined;
        const unlisten = stopListening;
        stopListening = undefined;
        try {
          unlisten?.();
        } catch {
          // the publisher's to fix; the relay is stopped either way
        }
        await options.wakeUp?.stop();
      }
    },
    runOnce,
    purgeNow,
    heartbeat: beat.read,
    async health() {
      const stats = await store.stats(now());
      const t = now();
      return {
        running,
        backlog: stats.backlog,
        oldestPendingAgeMs: stats.oldestPendingAgeMs,
        dead: stats.dead,
        lastPublishedAt,
        circuit,
        unavailableSince,
        quarantined,
        lastError,
        lastErrorAt,
        stalled: stats.backlog > 0 && t - Math.max(lastProgressAt, lastPublishedAt ?? 0) >= stalledAfterMs,
        heartbeat: beat.read(),
      };
    },
    [Symbol.asyncDispose]() {
      return relay.stop();
    },
  };
  return relay;
}

/** The messages with what tracing subscribers wrote into their carriers over their headers (new objects). */
function withCarriers(
  messages: readonly OutboxMessage[],
  carriers: readonly Record<string, string>[],
): readonly OutboxMessage[] {
  let out: OutboxMessage[] | undefined;
  for (let i = 0; i < messages.length; i++) {
    const carrier = carriers[i]!;
    let extra: Record<string, string> | undefined;
    for (const name in carrier) {
      const value = carrier[name];
      if (typeof value !== 'string') continue;
      extra ??= {};
      extra[name] = value;
    }
    if (extra === undefined) continue;
    out ??= messages.slice();
    const m = messages[i]!;
    out[i] = { ...m, headers: { ...m.headers, ...extra } };
  }
  return out ?? messages;
}
