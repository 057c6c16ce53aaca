import { hostname } from 'node:os';
import {
  ConfigurationError,
  createMessageProcessor,
  type Disposition,
  type IncomingMessage,
  type MessageConsumer,
  type MessageProcessor,
  type MessageProcessorOptions,
  noopLogger,
} from '@cqrs-ts/core';
import { createHeartbeat, createKeyedLimiter, errorText, type KeyedLimiter } from '@cqrs-ts/core/spi';
import { errorMessage, isNoGroup } from './redis-errors.ts';
import {
  close,
  connect,
  type RedisArgument,
  type RedisClientLike,
  type RedisStreamsConsumerOptions,
} from './redis-options.ts';
import { DATA_FIELD, DEFAULT_FIELD_PREFIX, decodeFields, text } from './redis-wire.ts';

/** A consumer-group consumer of Redis Streams feeding a {@link MessageProcessor}. */
export interface RedisStreamsConsumer extends MessageConsumer {
  /** The consumer's name in the group. */
  readonly name: string;
  /** Creates the groups (idempotent) and starts reading. Resolves once the groups exist. */
  start(): Promise<void>;
  /** Stops reading, finishes in-flight handlers, sends their acks, closes the connections it opened. Final. */
  stop(): Promise<void>;
}

type Entry = readonly [id: unknown, fields: unknown];

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms).unref?.());

function positiveInt(what: string, name: string, value: number, min = 1): number {
  if (!Number.isInteger(value) || value < min) {
    throw new ConfigurationError(`${what}: ${name} must be an integer >= ${min}`);
  }
  return value;
}

/** `[stream, entries]` pairs of an XREAD(GROUP) reply, whatever the protocol (RESP2, RESP3 legacy or mapped). @internal */
export function streamsOf(reply: unknown): [string, readonly Entry[]][] {
  if (reply === null || reply === undefined) return [];
  const out: [string, readonly Entry[]][] = [];
  if (Array.isArray(reply)) {
    if (reply.length > 0 && Array.isArray(reply[0])) {
      for (const pair of reply as [unknown, Entry[]][]) out.push([text(pair[0]), pair[1] ?? []]);
    } else {
      for (let i = 0; i + 1 < reply.length; i += 2)
        out.push([text(reply[i]), (reply[i + 1] as Entry[]) ?? []]);
    }
  } else if (reply instanceof Map) {
    for (const [k, v] of reply) out.push([text(k), (v as Entry[]) ?? []]);
  } else if (typeof reply === 'object') {
    for (const [k, v] of Object.entries(reply)) out.push([k, (v as Entry[]) ?? []]);
  }
  return out;
}

/**
 * Creates a consumer of Redis Streams consumer groups.
 *
 * - Reads with `XREADGROUP ... BLOCK` on a connection of its own (a duplicate of `redis`), acks (`XACK`) only
 *   after the processor succeeded; acks are pipelined.
 * - A failed entry stays pending; its idle time is set so that it becomes claimable when its backoff has
 *   elapsed, and `XAUTOCLAIM` hands it to a consumer of the group again. The attempt number is the entry's
 *   delivery count read from `XPENDING` after the claim.
 * - Dead letters (`N` attempts, undecodable or malformed entries) are appended to the dead-letter stream with
 *   the original fields plus `ce_deadletterreason`, `ce_deadlettersource`, `ce_deadletterattempts`, and acked
 *   in the same `MULTI`.
 * - Per partition key, entries run one after the other within this consumer; a retried entry runs again after
 *   the entries behind it. Entries of one key are spread over the consumers of a group, so use one consumer per
 *   group (or one stream per key range) when order matters.
 * - Survives Redis restarts: the read loop retries, and a group lost with the data (Redis without
 *   persistence) is created again, reading the new stream from its start. Entries that were only in Redis's
 *   memory are lost then; the outbox only protects what was not yet acknowledged by Redis.
 * @throws ConfigurationError for bad options.
 */
export function createRedisStreamsConsumer(options: RedisStreamsConsumerOptions): RedisStreamsConsumer {
  const what = 'redis streams consumer';
  if (options === null || typeof options !== 'object')
    throw new ConfigurationError(`${what}: options required`);
  const streams = options.streams;
  if (!Array.isArray(streams) || streams.length === 0 || streams.length > 256) {
    throw new ConfigurationError(`${what}: streams must list 1..256 stream keys`);
  }
  for (const s of streams) {
    if (typeof s !== 'string' || s.length === 0 || s.length > 1024) {
      throw new ConfigurationError(`${what}: stream keys must be 1..1024 chars`);
    }
  }
  if (new Set(streams).size !== streams.length) throw new ConfigurationError(`${what}: duplicate stream`);
  const group = options.group;
  if (typeof group !== 'string' || group.length === 0 || group.length > 200) {
    throw new ConfigurationError(`${what}: group must be 1..200 chars`);
  }
  const name = options.consumer ?? `${hostname()}-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
  if (typeof name !== 'string' || name.length === 0 || name.length > 200) {
    throw new ConfigurationError(`${what}: consumer must be 1..200 chars`);
  }
  const concurrency = positiveInt(what, 'concurrency', options.concurrency ?? 16);
  const batch = positiveInt(what, 'batch', options.batch ?? 64);
  const maxInFlight = positiveInt(what, 'maxInFlight', options.maxInFlight ?? 2 * concurrency + batch);
  const blockMs = positiveInt(what, 'blockMs', options.blockMs ?? 2000);
  const claimIdleMs = positiveInt(what, 'claimIdleMs', options.claimIdleMs ?? 30_000);
  const reclaimIntervalMs = positiveInt(what, 'reclaimIntervalMs', options.reclaimIntervalMs ?? 5000);
  const stopTimeoutMs = positiveInt(what, 'stopTimeoutMs', options.stopTimeoutMs ?? 30_000, 0);
  const dlqMaxLen = options.deadLetterMaxLen;
  if (dlqMaxLen !== undefined) positiveInt(what, 'deadLetterMaxLen', dlqMaxLen);
  const deadLetterStream = options.deadLetterStream ?? ((s: string) => `${s}:dead-letter`);
  if (typeof deadLetterStream !== 'function') {
    throw new ConfigurationError(`${what}: deadLetterStream must be a function`);
  }
  const prefix = options.fieldPrefix ?? DEFAULT_FIELD_PREFIX;
  if (typeof prefix !== 'string' || prefix.length === 0 || prefix.length > 32 || prefix === DATA_FIELD) {
    throw new ConfigurationError(`${what}: fieldPrefix must be 1..32 chars`);
  }
  const startId = options.startId ?? '0';
  if (startId !== '0' && startId !== '$') throw new ConfigurationError(`${what}: startId must be '0' or '$'`);
  const logger = options.logger ?? noopLogger;
  const p = options.processor;
  if (p === null || typeof p !== 'object') throw new ConfigurationError(`${what}: processor is required`);
  const processor: MessageProcessor =
    typeof (p as MessageProcessor).process === 'function'
      ? (p as MessageProcessor)
      : createMessageProcessor(p as MessageProcessorOptions);
  const dlqFields = {
    reason: `${prefix}deadletterreason`,
    source: `${prefix}deadlettersource`,
    attempts: `${prefix}deadletterattempts`,
    entry: `${prefix}deadletterentryid`,
    group: `${prefix}deadlettergroup`,
  };
  const dlqFieldNames = new Set(Object.values(dlqFields));

  const { client: commands, owned } = connect(options, what);
  let reader: RedisClientLike | undefined;
  let readerId: number | undefined;
  const limiter: KeyedLimiter = createKeyedLimiter(concurrency);
  const inFlight = new Set<string>();
  let running = false;
  /** A beat per `XREADGROUP` answered: a read that never returns (a hung server) stops it. */
  const beat = createHeartbeat(blockMs);
  let stopped = false;
  let readLoop: Promise<void> | undefined;
  let reclaimLoop: Promise<void> | undefined;
  let reclaimTimer: ReturnType<typeof setTimeout> | undefined;
  let reclaimAt = Number.POSITIVE_INFINITY;
  let reclaimWake: (() => void) | undefined;
  const counters = { handled: 0, duplicates: 0, retried: 0, deadLettered: 0, reconnects: 0 };
  let lastError: string | undefined;
  let readerReady = 0;
  /** Aborted by `stop()`: entries held while paused stay pending (claimable again). */
  const stopSignal = new AbortController();

  // Acks and retry schedules are flushed in one pipeline per tick.
  let acks = new Map<string, string[]>();
  let retries: { stream: string; id: string; dueAt: number }[] = [];
  let flushScheduled = false;
  let flushing: Promise<void> = Promise.resolve();

  const reportError = (error: unknown, where: string) => {
    lastError = `${where}: ${errorText(error)}`;
    logger.warn({ consumer: name, group, where, error: errorMessage(error) }, 'redis streams consumer error');
  };

  async function ensureGroups(): Promise<void> {
    const pipeline = commands.pipeline();
    for (const s of streams) pipeline.call('XGROUP', 'CREATE', s, group, startId, 'MKSTREAM');
    const replies = (await pipeline.exec()) ?? [];
    for (const [error] of replies) {
      if (error !== null && !errorMessage(error).startsWith('BUSYGROUP')) throw error;
    }
  }

  /** After Redis lost a group (restart without persistence): create it again, reading the new stream from 0. */
  async function recreateGroups(): Promise<void> {
    const pipeline = commands.pipeline();
    for (const s of streams) pipeline.call('XGROUP', 'CREATE', s, group, '0', 'MKSTREAM');
    const replies = (await pipeline.exec()) ?? [];
    let created = 0;
    for (const [error] of replies) {
      if (error === null) created++;
      else if (!errorMessage(error).startsWith('BUSYGROUP')) throw error;
    }
    counters.reconnects += created;
    if (created > 0)
      logger.warn({ consumer: name, group, created }, 'redis streams consumer group re-created');
  }

  function scheduleFlush(): void {
    if (flushScheduled) return;
    flushScheduled = true;
    setImmediate(() => {
      flushScheduled = false;
      flushing = flushing.then(flush);
    });
  }

  async function flush(): Promise<void> {
    if (acks.size === 0 && retries.length === 0) return;
    const sendAcks = acks;
    const sendRetries = retries;
    acks = new Map();
    retries = [];
    const pipeline = commands.pipeline();
    const ackStreams: string[] = [];
    for (const [stream, ids] of sendAcks) {
      pipeline.call('XACK', stream, group, ...ids);
      ackStreams.push(stream);
    }
    const now = Date.now();
    for (const r of sendRetries) {
      // Sets the entry's idle time so that XAUTOCLAIM takes it once the backoff has elapsed.
      const idle = claimIdleMs - Math.max(0, r.dueAt - now);
      pipeline.call('XCLAIM', r.stream, group, name, 0, r.id, 'IDLE', idle, 'JUSTID');
    }
    try {
      const replies = (await pipeline.exec()) ?? [];
      for (let i = 0; i < ackStreams.length; i++) {
        const error = replies[i]?.[0];
        // Not acked: the entries stay pending and are redelivered after claimIdleMs (the inbox dedupes).
        if (error != null && !isNoGroup(error)) reportError(error, 'XACK');
      }
    } catch (error) {
      for (const [stream, ids] of sendAcks) requeueAcks(stream, ids);
      reportError(error, 'flush');
      if (running) {
        await sleep(200);
        scheduleFlush();
      }
    }
  }

  function requeueAcks(stream: string, ids: string[]): void {
    const list = acks.get(stream);
    if (list === undefined) acks.set(stream, ids);
    else list.push(...ids);
  }

  function ack(stream: string, id: string): void {
    const list = acks.get(stream);
    if (list === undefined) acks.set(stream, [id]);
    else list.push(id);
    scheduleFlush();
  }

  async function deadLetter(
    stream: string,
    id: string,
    fields: readonly unknown[],
    reason: string,
    attempts: number,
  ): Promise<void> {
    const args: RedisArgument[] = [deadLetterStream(stream)];
    if (dlqMaxLen !== undefined) args.push('MAXLEN', '~', dlqMaxLen);
    args.push('*');
    for (let i = 0; i + 1 < fields.length; i += 2) {
      const n = fields[i];
      if (dlqFieldNames.has(text(n))) continue;
      args.push(n as Buffer, fields[i + 1] as Buffer);
    }
    args.push(
      dlqFields.reason,
      reason.slice(0, 2000),
      dlqFields.source,
      stream,
      dlqFields.attempts,
      String(attempts),
      dlqFields.entry,
      id,
      dlqFields.group,
      group,
    );
    const tx = commands.multi();
    tx.call('XADD', ...args);
    tx.call('XACK', stream, group, id);
    const replies = await tx.exec();
    const failed = replies?.find(([error]) => error !== null)?.[0];
    if (replies === null || failed) throw failed ?? new Error('dead-letter transaction aborted');
    counters.deadLettered++;
    logger.warn({ consumer: name, stream, id, reason, attempts }, 'redis streams entry dead-lettered');
  }

  async function apply(
    d: Disposition,
    stream: string,
    id: string,
    fields: readonly unknown[],
    attempt: number,
  ): Promise<void> {
    switch (d.action) {
      case 'release':
        return; // stays pending: claimed again after claimIdleMs
      case 'ack':
        if (d.outcome === 'duplicate') counters.duplicates++;
        else counters.handled++;
        ack(stream, id);
        return;
      case 'retry': {
        counters.retried++;
        const delay = Math.min(Math.max(0, d.delayMs), claimIdleMs);
        retries.push({ stream, id, dueAt: Date.now() + delay });
        scheduleFlush();
        scheduleReclaim(delay + 10);
        return;
      }
      case 'dead-letter':
        try {
          await deadLetter(stream, id, fields, d.reason, attempt);
        } catch (error) {
          // Left pending: claimed again after claimIdleMs and dead-lettered then.
          reportError(error, 'dead-letter');
        }
        return;
    }
  }

  function dispatch(stream: string, entry: Entry, attempt: number): void {
    const id = text(entry[0]);
    const fields = entry[1];
    const slot = `${stream}\n${id}`;
    if (inFlight.has(slot)) return; // claimed again while still running here
    if (!Array.isArray(fields)) {
      ack(stream, id); // deleted from the stream while pending: nothing left to process
      return;
    }
    const decoded = decodeFields(fields, prefix);
    const key = decoded.ok ? (decoded.attributes.partitionkey ?? null) : null;
    inFlight.add(slot);
    void limiter
      .run(key, async () => {
        let d: Disposition;
        if (!decoded.ok) {
          d = { action: 'dead-letter', reason: `malformed entry: ${decoded.reason}`, error: undefined };
        } else if (attempt > processor.maxAttempts + 1) {
          d = {
            action: 'dead-letter',
            reason: `delivered ${attempt} times without an outcome (consumer crashes or handlers slower than claimIdleMs)`,
            error: undefined,
          };
        } else {
          const message: IncomingMessage = {
            attributes: decoded.attributes,
            data: decoded.data,
            deliveryAttempt: attempt,
            source: stream,
          };
          d = await processor.process(message, stopSignal.signal);
        }
        await apply(d, stream, id, fields, attempt);
      })
      .catch((error) => reportError(error, 'process'))
      .finally(() => inFlight.delete(slot));
  }

  /** Counts the blocking reader's closed connections and reconnections. */
  let readerGeneration = 0;

  async function read(): Promise<void> {
    const args: RedisArgument[] = ['GROUP', group, name, 'COUNT', 0, 'BLOCK', blockMs, 'STREAMS', ...streams];
    for (let i = 0; i < streams.length; i++) args.push('>');
    let failures = 0;
    let ownPending = true; // at start, and after every failed read or lost connection
    while (running) {
      if (ownPending) {
        try {
          const generation = readerGeneration;
          await readOwnPending();
          ownPending = readerGeneration !== generation;
        } catch (error) {
          if (!running) break;
          failures++;
          if (isNoGroup(error)) {
            ownPending = false; // a new group has no pending entries
            try {
              await recreateGroups();
            } catch (e) {
              reportError(e, 'XGROUP CREATE');
            }
            continue;
          }
          reportError(error, 'XREADGROUP');
          const wait = Math.min(2000, 50 * 2 ** Math.min(failures, 6));
          beat.beat(wait);
          await sleep(wait);
          continue;
        }
      }
      await limiter.whenBelow(Math.max(1, maxInFlight - batch + 1));
      // a handler's dependency is down: read nothing new until it is back
      if (processor.pauseState().paused) {
        await processor.whenResumed(stopSignal.signal);
        beat.running(running); // parked on purpose: due again from now
      }
      if (!running) break;
      args[4] = Math.max(1, Math.min(batch, maxInFlight - limiter.size));
      let reply: unknown;
      const generation = readerGeneration;
      try {
        reply = await (reader as RedisClientLike).callBuffer('XREADGROUP', ...args);
        if (readerGeneration !== generation) {
          // answered across a lost connection: what it delivered is pending here, read it in order with the rest
          ownPending = true;
          continue;
        }
        failures = 0;
        beat.beat(0);
      } catch (error) {
        if (!running) break;
        failures++;
        if (isNoGroup(error)) {
          try {
            await recreateGroups();
            continue;
          } catch (e) {
            reportError(e, 'XGROUP CREATE');
          }
        } else reportError(error, 'XREADGROUP');
        ownPending = true;
        const wait = Math.min(2000, 50 * 2 ** Math.min(failures, 6));
        beat.beat(wait);
        await sleep(wait);
        continue;
      }
      for (const [stream, entries] of streamsOf(reply)) {
        for (const entry of entries) dispatch(stream, entry, 1);
      }
    }
  }

  function scheduleReclaim(inMs: number): void {
    const at = Date.now() + inMs;
    if (at >= reclaimAt) return;
    reclaimAt = at;
    clearTimeout(reclaimTimer);
    reclaimTimer = setTimeout(
      () => {
        reclaimAt = Number.POSITIVE_INFINITY;
        reclaimWake?.();
      },
      Math.max(0, inMs),
    );
  }

  async function reclaimStream(stream: string): Promise<void> {
    let cursor = '0-0';
    do {
      const room = maxInFlight - limiter.size;
      if (room <= 0 || !running) return;
      const reply = (await commands.callBuffer(
        'XAUTOCLAIM',
        stream,
        group,
        name,
        claimIdleMs,
        cursor,
        'COUNT',
        Math.min(room, batch),
      )) as [unknown, Entry[] | null, unknown?];
      cursor = text(reply[0]);
      const entries = (reply[1] ?? []).filter((e) => e !== null);
      if (entries.length > 0) await dispatchCounted(stream, entries);
    } while (cursor !== '0-0');
  }

  /** Dispatches entries taken from the pending list, each with its delivery count as attempt number. */
  async function dispatchCounted(stream: string, entries: readonly Entry[]): Promise<void> {
    const pipeline = commands.pipeline();
    for (const e of entries) {
      const id = text(e[0]);
      pipeline.call('XPENDING', stream, group, id, id, 1);
    }
    const counts = (await pipeline.exec()) ?? [];
    for (let i = 0; i < entries.length; i++) {
      const row = (counts[i]?.[1] as unknown[][] | undefined)?.[0];
      const attempt = Number(row?.[3] ?? 2);
      dispatch(stream, entries[i]!, Number.isFinite(attempt) && attempt > 0 ? attempt : 2);
    }
  }

  /**
   * Reads this consumer's own pending entries (`XREADGROUP ... 0`) and dispatches those not running here, in id
   * order, before any new entry is read. Run at start and after every failed read: an entry the server delivered
   * by a read whose reply was lost (a restart, a dropped connection) is pending for this consumer although it
   * never arrived; reading `>` first would hand newer entries of its key to the handlers before it, and
   * `XAUTOCLAIM` would bring it back only after `claimIdleMs`. Entries waiting out a retry backoff come too:
   * after an outage they are due anyway.
   */
  async function readOwnPending(): Promise<void> {
    const cursors = streams.map(() => '0');
    let open = streams.length;
    while (running && open > 0) {
      await limiter.whenBelow(Math.max(1, maxInFlight - batch + 1));
      const count = Math.max(1, Math.min(batch, maxInFlight - limiter.size));
      const reply = await (reader as RedisClientLike).callBuffer(
        'XREADGROUP',
        'GROUP',
        group,
        name,
        'COUNT',
        count,
        'STREAMS',
        ...streams,
        ...cursors,
      );
      open = 0;
      for (const [stream, entries] of streamsOf(reply)) {
        const i = streams.indexOf(stream);
        if (entries.length === 0 || i < 0) continue;
        cursors[i] = text(entries[entries.length - 1]![0]);
        if (entries.length === count) open++;
        await dispatchCounted(stream, entries);
      }
    }
  }

  /**
   * While paused: `XCLAIM ... JUSTID` the held entries to this consumer again, which resets their idle time
   * without counting a delivery, so neither this consumer's reclaim nor another's takes them meanwhile.
   */
  async function keepHeld(): Promise<void> {
    const byStream = new Map<string, string[]>();
    for (const slot of inFlight) {
      const cut = slot.indexOf('\n');
      const stream = slot.slice(0, cut);
      const ids = byStream.get(stream);
      if (ids === undefined) byStream.set(stream, [slot.slice(cut + 1)]);
      else ids.push(slot.slice(cut + 1));
    }
    if (byStream.size === 0) return;
    const pipeline = commands.pipeline();
    for (const [stream, ids] of byStream) pipeline.call('XCLAIM', stream, group, name, 0, ...ids, 'JUSTID');
    await pipeline.exec();
  }

  async function reclaim(): Promise<void> {
    let failures = 0;
    while (running) {
      const paused = processor.pauseState().paused;
      try {
        if (paused) await keepHeld();
        else for (const s of streams) await reclaimStream(s);
        failures = 0;
      } catch (error) {
        failures++;
        if (isNoGroup(error)) {
          try {
            await recreateGroups();
          } catch (e) {
            reportError(e, 'XGROUP CREATE');
          }
        } else reportError(error, 'XAUTOCLAIM');
      }
      if (!running) break;
      const every = paused
        ? Math.max(1, Math.min(reclaimIntervalMs, Math.floor(claimIdleMs / 3)))
        : reclaimIntervalMs;
      const wait = failures > 0 ? Math.min(every, 500 * failures) : every;
      await new Promise<void>((resolve) => {
        const t = setTimeout(done, wait);
        function done() {
          clearTimeout(t);
          reclaimWake = undefined;
          resolve();
        }
        reclaimWake = done;
      });
    }
  }

  async function unblockReader(): Promise<void> {
    if (readerId === undefined) return;
    try {
      await commands.call('CLIENT', 'UNBLOCK', readerId);
    } catch {
      // the read ends by itself after blockMs
    }
  }

  const consumer: RedisStreamsConsumer = {
    name,
    async start() {
      if (running) return;
      if (stopped) throw new ConfigurationError(`${what}: a stopped consumer cannot be started again`);
      await ensureGroups();
      reader = commands.duplicate();
      reader.on('error', () => {});
      const refreshId = () => {
        (reader as RedisClientLike)
          .call('CLIENT', 'ID')
          .then((id) => {
            readerId = Number(id);
          })
          .catch(() => {});
      };
      // A read in flight when the connection closes may be sent again after the reconnection (ioredis resends
      // unanswered commands), and one made while it is down waits for it: a reply that crosses a close or a
      // reconnection is discarded and the own pending entries are read first (see read()).
      reader.on('close', () => {
        readerGeneration++;
      });
      reader.on('ready', () => {
        // every ready after the first is a reconnection of the blocking reader
        if (++readerReady > 1) {
          counters.reconnects++;
          // a read queued while the connection was down is answered after this: read own pending entries first
          readerGeneration++;
        }
        refreshId();
      });
      refreshId();
      running = true;
      beat.running(true);
      readLoop = read();
      reclaimLoop = reclaim();
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      if (!running) {
        if (owned) await close(commands);
        return;
      }
      running = false;
      beat.running(false);
      stopSignal.abort();
      clearTimeout(reclaimTimer);
      reclaimWake?.();
      await unblockReader();
      const drained = await Promise.race([
        Promise.all([readLoop, reclaimLoop, limiter.drain()]).then(() => true),
        sleep(stopTimeoutMs).then(() => false),
      ]);
      if (!drained)
        logger.warn({ consumer: name, inFlight: limiter.size }, 'stop timed out; entries left pending');
      await flushing;
      await flush();
      if (reader !== undefined) await close(reader);
      reader = undefined;
      if (owned) await close(commands);
    },
    health() {
      return {
        running,
        connected: running && (reader as { status?: string } | undefined)?.status === 'ready',
        inFlight: limiter.size,
        ...counters,
        lastError,
        ...processor.pauseState(),
        heartbeat: beat.read(),
      };
    },
    async [Symbol.asyncDispose]() {
      await consumer.stop();
    },
  };
  return consumer;
}
