import { randomUUID } from 'node:crypto';
import type { MessagePublisher, OutboxMessage, PublishResult } from '../broker/message-publisher.ts';
import { ConfigurationError } from '../errors/cqrs-error.ts';
import type { BackoffOptions } from '../shared/backoff.ts';
import { backoffDelay } from '../shared/backoff.ts';
import { errorText } from '../shared/error-text.ts';
import type { Logger } from '../shared/logger.ts';
import { noopLogger } from '../shared/logger.ts';
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
  /** Failed attempts before a row goes to `dead`. @default 10 */
  readonly maxAttempts?: number;
  /** Backoff between attempts of one row. @default { initialMs: 500, maxMs: 60000, factor: 2 } */
  readonly backoff?: BackoffOptions;
  readonly retention?: OutboxRetentionOptions;
  readonly wakeUp?: OutboxWakeUp;
  /** Health reports `stalled` when there is a backlog and nothing was published for this long. @default 60000 */
  readonly stalledAfterMs?: number;
  /** Graceful stop waits this long for the in-flight batch, then aborts the publish. @default 10000 */
  readonly stopTimeoutMs?: number;
  readonly logger?: Logger;
  /** Clock, epoch ms. @default Date.now */
  readonly now?: () => number;
}

/** What {@link OutboxRelay.health} reports. */
export interface OutboxRelayHealth {
  readonly running: boolean;
  readonly backlog: number;
  readonly oldestPendingAgeMs: number;
  readonly dead: number;
  /** Epoch ms of the last successful publish, `undefined` if none yet. */
  readonly lastPublishedAt: number | undefined;
  /** Last error of a relay iteration (storage or publisher), `undefined` after a clean iteration. */
  readonly lastError: string | undefined;
  /** Backlog but no publish for `stalledAfterMs`. */
  readonly stalled: boolean;
}

/** Result of one {@link OutboxRelay.runOnce}. */
export interface OutboxRunResult {
  readonly claimed: number;
  readonly published: number;
  readonly failed: number;
  readonly released: number;
}

/**
 * Moves outbox rows to a broker: claim a batch (leased, per-key ordered), publish, record the outcome with
 * one statement per outcome kind. Delivery is at least once; pair consumers with the inbox to dedupe.
 * An event is never published before an earlier pending event with the same key: after a failure the later
 * events of that key in the batch are released, not published. A dead row stops blocking its key.
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
}

const EMPTY_RESULT: OutboxRunResult = Object.freeze({ claimed: 0, published: 0, failed: 0, released: 0 });

function positive(name: string, value: number, min = 1): number {
  if (!Number.isFinite(value) || value < min)
    throw new ConfigurationError(`outbox relay: ${name} must be >= ${min}`);
  return value;
}

/** Creates a relay. Call `start()` for the background loop, or drive it with `runOnce()`. */
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

  let running = false;
  let loop: Promise<void> | undefined;
  let wakeTimer: ReturnType<typeof setTimeout> | undefined;
  let wakeResolve: (() => void) | undefined;
  let woken = false;
  let publishAbort = new AbortController();
  let lastPublishedAt: number | undefined;
  let lastProgressAt = now();
  let lastError: string | undefined;
  let lastPurgeAt = 0;

  const wake = () => {
    woken = true;
    const r = wakeResolve;
    if (r) {
      wakeResolve = undefined;
      clearTimeout(wakeTimer);
      r();
    }
  };

  const idle = (ms: number) =>
    new Promise<void>((resolve) => {
      if (woken || !running) {
        woken = false;
        resolve();
        return;
      }
      wakeResolve = resolve;
      wakeTimer = setTimeout(() => {
        wakeResolve = undefined;
        resolve();
      }, ms);
    });

  async function send(messages: readonly OutboxMessage[]): Promise<readonly PublishResult[]> {
    if (messages.length <= maxPublish) return callPublisher(messages);
    const out: PublishResult[] = [];
    for (let i = 0; i < messages.length; i += maxPublish) {
      out.push(...(await callPublisher(messages.slice(i, i + maxPublish))));
    }
    return out;
  }

  async function callPublisher(messages: readonly OutboxMessage[]): Promise<readonly PublishResult[]> {
    try {
      const results = await publisher.publish(messages, { signal: publishAbort.signal });
      if (results.length !== messages.length) {
        const error = new Error(
          `publisher returned ${results.length} results for ${messages.length} messages`,
        );
        return messages.map(() => ({ ok: false, error }));
      }
      return results;
    } catch (error) {
      return messages.map(() => ({ ok: false, error }));
    }
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
        const r = results[i]!;
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
      for (let j = 0; j < wave.length; j++) {
        const i = wave[j]!;
        const r = results[j]!;
        outcome[i] = r;
        const key = messages[i]!.key;
        if (!r.ok && key !== null) failedKeys.add(key);
      }
      pending = rest;
    }
  }

  async function claim(): Promise<readonly OutboxRecord[]> {
    let records = await store.claimBatch({ relayId, limit: batchSize, leaseMs, now: now() });
    if (maxBatchAgeMs > 0 && records.length > 0 && records.length < batchSize) {
      const age = now() - records[0]!.createdAt;
      if (age < maxBatchAgeMs && running) {
        await idle(maxBatchAgeMs - age);
        const more = await store.claimBatch({
          relayId,
          limit: batchSize - records.length,
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
    readonly at: number;
  }

  /** Decodes and publishes `records`, sorting each into published, failed or released. */
  async function publishRecords(records: readonly OutboxRecord[]): Promise<Outcome> {
    const n = records.length;
    const outcome: (PublishResult | undefined)[] = new Array(n);
    const messages: OutboxMessage[] = [];
    const messageIndex: number[] = [];
    for (let i = 0; i < n; i++) {
      try {
        messages.push(decodeOutboxRecord(records[i]!));
        messageIndex.push(i);
      } catch (error) {
        outcome[i] = { ok: false, error, retryable: false };
      }
    }
    if (messages.length > 0) {
      const sub: (PublishResult | undefined)[] = new Array(messages.length);
      await publishOrdered(messages, sub);
      for (let j = 0; j < messages.length; j++) outcome[messageIndex[j]!] = sub[j];
    }
    const published: string[] = [];
    const failures: OutboxFailure[] = [];
    const released: string[] = [];
    const t = now();
    for (let i = 0; i < n; i++) {
      const record = records[i]!;
      const r = outcome[i];
      if (r === undefined || (!r.ok && publishAbort.signal.aborted)) released.push(record.id);
      else if (r.ok) published.push(record.id);
      else {
        const attempts = record.attempts + 1;
        failures.push({
          id: record.id,
          error: errorText(r.error),
          dead: r.retryable === false || attempts >= maxAttempts,
          nextAttemptAt: t + backoffDelay(attempts, backoff),
        });
      }
    }
    return { published, failures, released, at: t };
  }

  function recordOutcome(o: Outcome, claimed: number): OutboxRunResult {
    if (o.published.length > 0) {
      lastPublishedAt = o.at;
      lastProgressAt = o.at;
    }
    if (o.failures.length > 0) {
      logger.warn(
        { relayId, failed: o.failures.length, firstError: o.failures[0]!.error },
        'outbox publish failed',
      );
    }
    return { claimed, published: o.published.length, failed: o.failures.length, released: o.released.length };
  }

  async function runLocked(): Promise<OutboxRunResult> {
    const processLocked = store.processLocked!.bind(store);
    let done: { outcome: Outcome; claimed: number } | undefined;
    let waitMs = 0;
    const attempt = (mayWait: boolean) =>
      processLocked({ limit: batchSize, now: now() }, async (records) => {
        if (records.length === 0) return undefined;
        if (mayWait && maxBatchAgeMs > 0 && records.length < batchSize && running) {
          const age = now() - records[0]!.createdAt;
          if (age < maxBatchAgeMs) {
            waitMs = maxBatchAgeMs - age;
            return undefined; // roll back, let the batch fill, then take it
          }
        }
        const o = await publishRecords(records);
        done = { outcome: o, claimed: records.length };
        return { published: o.published, failures: o.failures, publishedAt: o.at };
      });
    await attempt(true);
    if (waitMs > 0) {
      await idle(waitMs);
      await attempt(false);
    }
    // Counted only once committed: a failed commit leaves the rows pending and throws above.
    return done === undefined ? EMPTY_RESULT : recordOutcome(done.outcome, done.claimed);
  }

  async function runOnce(): Promise<OutboxRunResult> {
    if (locked) return runLocked();
    const records = await claim();
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
    while (running) {
      let result = EMPTY_RESULT;
      try {
        result = await runOnce();
        if (retention && now() - lastPurgeAt >= (retention.intervalMs ?? 60_000)) await purgeNow();
        errors = 0;
        lastError = undefined;
      } catch (error) {
        errors++;
        lastError = errorText(error);
        logger.error({ relayId, error: lastError }, 'outbox relay iteration failed');
        await idle(Math.min(backoffDelay(errors, { initialMs: 100, maxMs: pollIntervalMs * 5 }), 30_000));
        continue;
      }
      if (result.claimed < batchSize || result.published === 0) await idle(pollIntervalMs);
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
      wake();
      const timer = setTimeout(() => publishAbort.abort(new Error('outbox relay stopping')), stopTimeoutMs);
      try {
        await loop;
      } finally {
        clearTimeout(timer);
        loop = undefined;
        await options.wakeUp?.stop();
      }
    },
    runOnce,
    purgeNow,
    async health() {
      const stats = await store.stats(now());
      const t = now();
      return {
        running,
        backlog: stats.backlog,
        oldestPendingAgeMs: stats.oldestPendingAgeMs,
        dead: stats.dead,
        lastPublishedAt,
        lastError,
        stalled: stats.backlog > 0 && t - Math.max(lastProgressAt, lastPublishedAt ?? 0) >= stalledAfterMs,
      };
    },
    [Symbol.asyncDispose]() {
      return relay.stop();
    },
  };
  return relay;
}
