import type { BackoffOptions, IncomingMessage, MessageConsumer, MessageProcessor } from '@cqrs-ts/core';
import { ConfigurationError, createMessageProcessor } from '@cqrs-ts/core';
import { backoffDelay, createKeyedLimiter, errorText } from '@cqrs-ts/core/spi';
import { Consumer, Producer } from '@platformatic/kafka';
import { createCommitQueue, createOffsetTracker, type OffsetTracker } from './kafka-offset-tracker.ts';
import type {
  ConsumedKafkaMessage,
  KafkaConsumerErrorContext,
  KafkaConsumerLike,
  KafkaConsumerOptions,
  KafkaMessageStreamLike,
  KafkaProducerLike,
} from './kafka-options.ts';
import { assertBrokers } from './kafka-publisher.ts';
import { buildDeadLetterRecord, fromKafkaHeaders } from './kafka-wire.ts';

/** A consumer-group consumer feeding a message processor (the event mediator or a handle function). */
export interface KafkaConsumer extends MessageConsumer {
  /**
   * Joins the group and starts consuming in the background. Rejects (and cleans up) when the first
   * stream cannot be opened; later failures are retried by the consumer itself.
   */
  start(): Promise<void>;
  /**
   * Graceful stop: stops fetching, lets running handlers finish (records queued but not started, and those
   * waiting for a retry, are left uncommitted for the next owner), commits, leaves the group and closes
   * the clients it created.
   */
  stop(): Promise<void>;
}

const DEFAULT_RECONNECT: BackoffOptions = { initialMs: 500, maxMs: 30_000 };
const TOPIC_RE = /^[a-zA-Z0-9._-]{1,249}$/;

function sleep(ms: number, signal: AbortSignal): Promise<boolean> {
  if (signal.aborted) return Promise.resolve(false);
  return new Promise((resolve) => {
    const onAbort = () => {
      clearTimeout(timer);
      resolve(false);
    };
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve(true);
    }, ms);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

/** Validates consumer options; returns the normalised values. @internal */
export function resolveConsumerOptions(options: KafkaConsumerOptions) {
  if (options === null || typeof options !== 'object') {
    throw new ConfigurationError('kafka consumer: options are required');
  }
  const { groupId, topics } = options;
  if (typeof groupId !== 'string' || groupId.length === 0 || groupId.length > 200) {
    throw new ConfigurationError('kafka consumer: groupId must be 1..200 chars');
  }
  if (!Array.isArray(topics) || topics.length === 0) {
    throw new ConfigurationError('kafka consumer: topics must be a non-empty array');
  }
  for (const t of topics) {
    if (typeof t !== 'string' || !TOPIC_RE.test(t)) {
      throw new ConfigurationError(`kafka consumer: invalid topic ${JSON.stringify(String(t).slice(0, 80))}`);
    }
  }
  const concurrency = options.concurrency ?? 16;
  if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > 10_000) {
    throw new ConfigurationError('kafka consumer: concurrency must be an integer in 1..10000');
  }
  const prefetch = options.prefetch ?? concurrency * 4;
  if (!Number.isInteger(prefetch) || prefetch < concurrency) {
    throw new ConfigurationError('kafka consumer: prefetch must be an integer >= concurrency');
  }
  const ordering = options.ordering ?? 'key';
  if (ordering !== 'key' && ordering !== 'partition') {
    throw new ConfigurationError(`kafka consumer: ordering must be 'key' or 'partition'`);
  }
  const startFrom = options.startFrom ?? 'earliest';
  if (startFrom !== 'earliest' && startFrom !== 'latest') {
    throw new ConfigurationError(`kafka consumer: startFrom must be 'earliest' or 'latest'`);
  }
  const deadLetterTopic = options.deadLetterTopic ?? ((topic: string) => `${topic}.DLT`);
  for (const t of topics) {
    const dlt = deadLetterTopic(t);
    if (typeof dlt !== 'string' || !TOPIC_RE.test(dlt) || topics.includes(dlt)) {
      throw new ConfigurationError(
        `kafka consumer: dead-letter topic of ${t} must be a valid topic that is not consumed`,
      );
    }
  }
  if (options.consumer === undefined || options.deadLetterProducer === undefined) {
    assertBrokers(options.brokers, 'kafka consumer');
  }
  return { groupId, topics: [...topics], concurrency, prefetch, ordering, startFrom, deadLetterTopic };
}

/**
 * The lane a record runs in (records of one lane run one at a time, in offset order): its partition, or
 * with `ordering: 'key'` its topic and key (keyless records keep their partition's lane).
 */
export function laneOf(message: ConsumedKafkaMessage, ordering: 'key' | 'partition'): string {
  const key = message.key;
  if (ordering === 'partition' || key == null || key.length === 0) {
    return `p\u0000${message.topic}\u0000${message.partition}`;
  }
  return `k\u0000${message.topic}\u0000${key.toString('latin1')}`;
}

/**
 * Creates a Kafka consumer-group consumer. Per record: decode, validate, deduplicate (inbox), dispatch
 * (through `createMessageProcessor`); on failure retry in process with backoff up to `maxAttempts`, then
 * produce the record to the dead-letter topic with the reason; malformed or unknown records are
 * dead-lettered at once. Offsets are committed only after the record finished, per partition, never past an
 * unfinished record (see `createOffsetTracker`), so a crash redelivers instead of losing.
 *
 * Reconnection: the client reconnects broker connections by itself and rejoins the group after session
 * loss; when the fetch stream fails anyway, the consumer re-creates it with backoff, resuming from the
 * committed offsets (already handled records may be seen again: use the inbox for one effect).
 */
export function createKafkaConsumer(options: KafkaConsumerOptions): KafkaConsumer {
  const o = resolveConsumerOptions(options);
  const clientId = options.clientId ?? 'cqrs-ts';
  const processor: MessageProcessor = createMessageProcessor({ ...options, name: options.name ?? o.groupId });
  const reconnectBackoff = options.reconnectBackoff ?? DEFAULT_RECONNECT;
  const onError = options.onError;
  let lastError: string | undefined;
  const report = (error: unknown, context: KafkaConsumerErrorContext) => {
    lastError = `${context.stage}: ${errorText(error)}`;
    if (onError === undefined) return;
    try {
      onError(error, context);
    } catch {
      // observers must not break the loop
    }
  };

  const ownsConsumer = options.consumer === undefined;
  const ownsProducer = options.deadLetterProducer === undefined;
  let client: KafkaConsumerLike | undefined = options.consumer;
  let dlq: KafkaProducerLike | undefined = options.deadLetterProducer;
  const brokers = options.brokers ? [...options.brokers] : [];

  const limiter = createKeyedLimiter(o.concurrency);
  let tracker: OffsetTracker = createOffsetTracker();
  const stats = { handled: 0, duplicates: 0, retried: 0, deadLettered: 0, reconnects: 0 };
  let running = false;
  let stopping = false;
  let abort = new AbortController();
  let stream: KafkaMessageStreamLike | undefined;
  let loop: Promise<void> | undefined;

  const commits = createCommitQueue(
    async (offsets) => {
      if (client === undefined) return;
      await client.commit({ offsets: offsets.map((c) => ({ ...c })) });
    },
    (error, offsets) => report(error, { stage: 'commit', topic: offsets[0]?.topic ?? '' }),
  );

  function finish(m: ConsumedKafkaMessage): void {
    const c = tracker.finish(m.topic, m.partition, m.offset);
    if (c !== undefined) commits.add(c);
  }

  async function deadLetter(m: ConsumedKafkaMessage, reason: string, attempts: number): Promise<boolean> {
    const record = buildDeadLetterRecord(m, { topic: o.deadLetterTopic(m.topic), reason, attempts });
    for (let attempt = 1; ; attempt++) {
      try {
        await (dlq as KafkaProducerLike).send({ messages: [record], acks: -1 });
        return true;
      } catch (error) {
        report(error, { stage: 'dead-letter', topic: m.topic, partition: m.partition });
        // never drop a record: keep trying (the partition's commits wait) until it works or we stop
        if (!(await sleep(backoffDelay(attempt, reconnectBackoff), abort.signal))) return false;
      }
    }
  }

  async function handle(m: ConsumedKafkaMessage): Promise<void> {
    if (stopping) return; // queued, not started: left uncommitted
    const attributes = fromKafkaHeaders(m.headerEntries);
    const data = m.value ?? EMPTY;
    for (let attempt = 1; ; attempt++) {
      const incoming: IncomingMessage = { attributes, data, deliveryAttempt: attempt, source: m.topic };
      const d = await processor.process(incoming, abort.signal);
      if (d.action === 'release') return; // stopping while paused: left uncommitted
      if (d.action === 'ack') {
        if (d.outcome === 'duplicate') stats.duplicates++;
        else stats.handled++;
        break;
      }
      if (d.action === 'retry') {
        stats.retried++;
        if (!(await sleep(d.delayMs, abort.signal))) return; // stopping: redelivered to the next owner
        continue;
      }
      if (!(await deadLetter(m, d.reason, attempt))) return;
      stats.deadLettered++;
      break;
    }
    finish(m);
  }

  async function openStream(): Promise<KafkaMessageStreamLike> {
    if (client === undefined) {
      client = new Consumer({
        sessionTimeout: options.sessionTimeoutMs ?? 30_000,
        heartbeatInterval: options.heartbeatIntervalMs ?? 3_000,
        ...(options.clientOptions ?? {}),
        clientId,
        bootstrapBrokers: brokers,
        groupId: o.groupId,
        autocommit: false,
      }) as unknown as KafkaConsumerLike;
    }
    return client.consume({
      topics: o.topics,
      mode: 'committed',
      fallbackMode: o.startFrom,
      autocommit: false,
      maxWaitTime: options.maxWaitTimeMs ?? 500,
      highWaterMark: o.prefetch,
    });
  }

  async function consume(): Promise<void> {
    let failures = 0;
    while (!stopping) {
      try {
        stream ??= await openStream();
        for await (const m of stream) {
          failures = 0;
          tracker.track(m.topic, m.partition, m.offset, m.leaderEpoch);
          void limiter
            .run(laneOf(m, o.ordering), () => handle(m))
            .catch((error: unknown) => {
              // handle() only throws on a bug; the record stays unfinished (never committed past)
              report(error, { stage: 'consume', topic: m.topic, partition: m.partition });
            });
          if (limiter.size >= o.prefetch) await limiter.whenBelow(o.prefetch);
          // a handler's dependency is down: take nothing more from the stream until it is back
          if (processor.pauseState().paused) await processor.whenResumed(abort.signal);
          if (stopping) break;
        }
      } catch (error) {
        if (stopping) break;
        report(error, { stage: 'consume' });
      }
      await closeStream();
      if (stopping) break;
      failures++;
      stats.reconnects++;
      await sleep(backoffDelay(failures, reconnectBackoff), abort.signal);
    }
  }

  async function closeStream() {
    const s = stream;
    stream = undefined;
    if (s === undefined) return;
    try {
      await s.close();
    } catch (error) {
      report(error, { stage: 'close' });
    }
  }

  const consumer: KafkaConsumer = {
    async start() {
      if (running) return;
      running = true;
      stopping = false;
      abort = new AbortController();
      tracker = createOffsetTracker();
      if (dlq === undefined) {
        dlq = new Producer({
          retries: 3, // not forever (the idempotent default): dead-lettering retries by itself
          ...(options.clientOptions ?? {}),
          clientId: `${clientId}-dlq`,
          bootstrapBrokers: brokers,
          idempotent: true,
        }) as unknown as KafkaProducerLike;
      }
      try {
        stream = await openStream();
      } catch (error) {
        await consumer.stop();
        throw error;
      }
      loop = consume();
    },
    async stop() {
      if (!running) return;
      stopping = true;
      abort.abort();
      await closeStream();
      await loop;
      loop = undefined;
      await limiter.drain();
      await commits.flush();
      running = false;
      if (ownsConsumer && client !== undefined) {
        try {
          await client.close();
        } catch (error) {
          report(error, { stage: 'close' });
        }
        client = undefined;
      }
      if (ownsProducer && dlq !== undefined) {
        try {
          await dlq.close();
        } catch (error) {
          report(error, { stage: 'close' });
        }
        dlq = undefined;
      }
    },
    health() {
      return {
        running,
        connected: running && stream !== undefined,
        inFlight: tracker.pending,
        ...stats,
        lastError,
        ...processor.pauseState(),
      };
    },
    async [Symbol.asyncDispose]() {
      await consumer.stop();
    },
  };
  return consumer;
}

const EMPTY = new Uint8Array(0);
