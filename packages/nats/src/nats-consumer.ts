import type { Disposition, IncomingMessage, MessageConsumer, MessageProcessor } from '@cqrs-ts/core';
import { BrokerError, ConfigurationError, createMessageProcessor, noopLogger } from '@cqrs-ts/core';
import {
  type CloudEventAttributes,
  createHeartbeat,
  createKeyedLimiter,
  errorText,
  fromBindingHeaders,
  percentDecodeHeader,
  percentEncodeHeader,
} from '@cqrs-ts/core/spi';
import type {
  Consumer,
  ConsumerConfig,
  ConsumerInfo,
  ConsumerMessages,
  JetStreamClient,
  JetStreamManager,
  JsMsg,
} from '@nats-io/jetstream';
import {
  AckPolicy,
  DeliverPolicy,
  JetStreamApiCodes,
  JetStreamApiError,
  jetstreamManager,
  ReplayPolicy,
} from '@nats-io/jetstream';
import type { MsgHdrs, NatsConnection, Status } from '@nats-io/transport-node';
import { headers as createHeaders, nanos } from '@nats-io/transport-node';
import { type AckedSender, type AckOwner, createAckedSender } from './nats-acked-sender.ts';
import {
  assertInt,
  assertName,
  isValidSubject,
  type NatsConsumerOptions,
  type OpenedConnection,
  openConnection,
  subjectFilters,
} from './nats-options.ts';
import { NATS_CE_PREFIX } from './nats-publisher.ts';
import { ensureNatsStream } from './nats-stream.ts';

/**
 * A durable JetStream pull consumer feeding a {@link MessageProcessor}: acknowledges after success, naks with
 * the processor's backoff delay, dead-letters (publish to the dead-letter subject, then ack) malformed, unknown
 * and exhausted messages, keeps same-key messages sequential, and resumes by itself after outages.
 */
export interface NatsConsumer extends MessageConsumer {
  readonly name: string;
  readonly processor: MessageProcessor;
  /** Connects, ensures the durable consumer (and dead-letter stream) and starts fetching. */
  start(): Promise<void>;
  /** Stops fetching, waits for running handlers (up to `stopTimeoutMs`), naks what was not started, closes. */
  stop(): Promise<void>;
}

const isApiError = (error: unknown, code: number) =>
  error instanceof JetStreamApiError && error.code === code;

/** Header values cannot carry CR/LF; reasons are error messages. */
const headerSafe = (s: string, max = 2000) => s.replace(/[\r\n]+/g, ' ').slice(0, max);

/** Reads the CloudEvents attributes from NATS headers (`ce-*`, `content-type`). @internal */
export function attributesFromHeaders(h: MsgHdrs | undefined): CloudEventAttributes {
  if (h === undefined) return {};
  const record: Record<string, string> = {};
  for (const [k, values] of h) {
    const v = values[0];
    if (v !== undefined) record[k] = v;
  }
  const attributes = fromBindingHeaders(record, NATS_CE_PREFIX);
  // the binding percent-encodes `ce-` values; `content-type` is a plain MIME type
  for (const name in attributes) {
    if (name !== 'datacontenttype') attributes[name] = percentDecodeHeader(attributes[name]!);
  }
  return attributes;
}

class Waiter implements AckOwner {
  resolve!: () => void;
  reject!: (error: unknown) => void;
  readonly done = new Promise<void>((resolve, reject) => {
    this.resolve = resolve;
    this.reject = reject;
  });
  settle(_index: number, error: BrokerError | undefined): void {
    if (error === undefined) this.resolve();
    else this.reject(error);
  }
}

/** Creates (does not start) a JetStream consumer. @throws ConfigurationError on bad options. */
export function createNatsConsumer(options: NatsConsumerOptions): NatsConsumer {
  const stream = assertName(options.stream, 'nats consumer: stream');
  const name = assertName(options.name, 'nats consumer: name');
  const processor = createMessageProcessor({ ...options, name });
  const concurrency = assertInt(options.concurrency ?? 16, 'nats consumer: concurrency', 1, 10_000);
  const maxAckPending = assertInt(
    options.maxAckPending ?? Math.max(64, concurrency * 4),
    'nats consumer: maxAckPending',
    1,
  );
  const ackWaitMs = assertInt(options.ackWaitMs ?? 30_000, 'nats consumer: ackWaitMs', 1000);
  const stopTimeoutMs = assertInt(options.stopTimeoutMs ?? 30_000, 'nats consumer: stopTimeoutMs', 0);
  const pullExpiresMs = assertInt(
    options.pullExpiresMs ?? 5000,
    'nats consumer: pullExpiresMs',
    1000,
    300_000,
  );
  // the pull's idle heartbeat, as the client asks for it (half of expires, 500 ms to 30 s)
  const idleHeartbeatMs = Math.min(30_000, Math.max(500, Math.floor(pullExpiresMs / 2)));
  /** A beat per message delivered and per server heartbeat of the pull: a server that hangs stops both. */
  const beat = createHeartbeat(idleHeartbeatMs);
  const publishTimeoutMs = assertInt(options.publishTimeoutMs ?? 5000, 'nats consumer: publishTimeoutMs', 1);
  const deliverPolicy = options.deliverPolicy ?? 'all';
  if (deliverPolicy !== 'all' && deliverPolicy !== 'new') {
    throw new ConfigurationError("nats consumer: deliverPolicy must be 'all' or 'new'");
  }
  const filters = subjectFilters(options.filterSubjects, 'nats consumer');
  const dlSubject = options.deadLetter?.subject ?? `cqrs-dlq.${stream}.${name}`;
  if (!isValidSubject(dlSubject)) {
    throw new ConfigurationError(`nats consumer: invalid dead-letter subject ${JSON.stringify(dlSubject)}`);
  }
  const dlStreamOption = options.deadLetter?.stream;
  const dlStream =
    dlStreamOption === false
      ? undefined
      : assertName(dlStreamOption ?? `${stream}_DLQ`, 'nats consumer: deadLetter.stream');
  const logger = options.logger ?? noopLogger;
  const limiter = createKeyedLimiter(concurrency);
  const maxBuffered = concurrency * 2;

  let opened: OpenedConnection | undefined;
  let sender: AckedSender | undefined;
  let js: JetStreamClient | undefined;
  let jsm: JetStreamManager | undefined;
  let consumer: Consumer | undefined;
  let current: ConsumerMessages | undefined;
  let running = false;
  let loop: Promise<void> | undefined;
  let wake: (() => void) | undefined;
  let progressTimer: ReturnType<typeof setInterval> | undefined;
  let statuses: AsyncIterable<Status> | undefined;
  const inFlight = new Map<JsMsg, number>();
  const stats = { handled: 0, duplicates: 0, retried: 0, deadLettered: 0, reconnects: 0 };
  let lastError: string | undefined;
  /** Aborted by `stop()`: messages held while paused go back to the stream. */
  let stopSignal = new AbortController();

  const consumerConfig = (): Partial<ConsumerConfig> => ({
    durable_name: name,
    ack_policy: AckPolicy.Explicit,
    ack_wait: nanos(ackWaitMs),
    max_ack_pending: maxAckPending,
    max_deliver: -1,
    deliver_policy: deliverPolicy === 'all' ? DeliverPolicy.All : DeliverPolicy.New,
    replay_policy: ReplayPolicy.Instant,
    ...(filters.length === 1 ? { filter_subject: filters[0]! } : {}),
    ...(filters.length > 1 ? { filter_subjects: filters } : {}),
  });

  async function ensureConsumer(m: JetStreamManager): Promise<ConsumerInfo> {
    const wanted = consumerConfig();
    let info: ConsumerInfo | undefined;
    try {
      info = await m.consumers.info(stream, name);
    } catch (error) {
      if (!isApiError(error, JetStreamApiCodes.ConsumerNotFound)) throw error;
    }
    if (info === undefined) return m.consumers.add(stream, wanted);
    const c = info.config;
    const haveFilters = c.filter_subjects ?? (c.filter_subject ? [c.filter_subject] : []);
    if (haveFilters.join('\n') !== filters.join('\n')) {
      throw new ConfigurationError(
        `nats consumer ${name}: durable exists on ${stream} with filter [${haveFilters.join(', ')}], not [${filters.join(', ')}]; delete it or use another name`,
      );
    }
    if (
      c.ack_wait !== wanted.ack_wait ||
      c.max_ack_pending !== wanted.max_ack_pending ||
      (c.max_deliver ?? -1) !== -1
    ) {
      return m.consumers.update(stream, name, {
        ack_wait: wanted.ack_wait!,
        max_ack_pending: wanted.max_ack_pending!,
        max_deliver: -1,
      });
    }
    return info;
  }

  const sleep = (ms: number) =>
    new Promise<void>((resolve) => {
      const t = setTimeout(() => {
        wake = undefined;
        resolve();
      }, ms);
      wake = () => {
        clearTimeout(t);
        wake = undefined;
        resolve();
      };
    });

  const safely = (what: string, fn: () => void) => {
    try {
      fn();
    } catch (error) {
      lastError = `${what}: ${errorText(error)}`;
    }
  };

  // Acks of one event-loop turn go out together: the client writes to its socket once per microtask checkpoint
  // in which something was sent, and handlers finish in checkpoints of their own, so an ack each would cost a
  // socket write each. They are sent at the end of the turn (`setImmediate`), and before the connection closes.
  let acks: JsMsg[] = [];
  let acksDue: ReturnType<typeof setImmediate> | undefined;
  const sendAcks = () => {
    acksDue = undefined;
    const due = acks;
    acks = [];
    for (const m of due) safely('ack', () => m.ack());
  };
  const ack = (m: JsMsg) => {
    acks.push(m);
    acksDue ??= setImmediate(sendAcks);
  };

  async function deadLetter(m: JsMsg, message: IncomingMessage, reason: string): Promise<void> {
    const h = createHeaders();
    if (m.headers !== undefined) {
      for (const [k, values] of m.headers) {
        if (/^nats-/i.test(k)) continue;
        for (const v of values) h.append(k, v);
      }
    }
    // one dead letter per consumer: two consumers that give up on the same message both keep theirs
    h.set('Nats-Msg-Id', `dlq-${m.info.stream}-${m.seq}-${percentEncodeHeader(name)}`);
    h.set(`${NATS_CE_PREFIX}deadletterreason`, headerSafe(reason));
    h.set(`${NATS_CE_PREFIX}deadlettersource`, headerSafe(m.subject, 512));
    h.set(`${NATS_CE_PREFIX}deadletterattempts`, String(message.deliveryAttempt));
    h.set(`${NATS_CE_PREFIX}deadletterstream`, m.info.stream);
    h.set(`${NATS_CE_PREFIX}deadlettersequence`, String(m.seq));
    h.set(`${NATS_CE_PREFIX}deadletterconsumer`, name);
    const waiter = new Waiter();
    const error = sender!.send(dlSubject, m.data, h, waiter, 0);
    if (error !== undefined) throw error;
    await waiter.done;
  }

  async function handle(m: JsMsg): Promise<void> {
    try {
      if (!running) {
        // received but not started before stop: give it back at once
        safely('nak', () => m.nak());
        return;
      }
      const message: IncomingMessage = {
        attributes: attributesFromHeaders(m.headers),
        data: m.data,
        deliveryAttempt: m.info.deliveryCount,
        source: m.subject,
      };
      const d: Disposition = await processor.process(message, stopSignal.signal);
      switch (d.action) {
        case 'release':
          safely('nak', () => m.nak());
          return;
        case 'ack':
          if (d.outcome === 'duplicate') stats.duplicates++;
          else stats.handled++;
          ack(m);
          return;
        case 'retry':
          stats.retried++;
          safely('nak', () => m.nak(d.delayMs));
          return;
        case 'dead-letter':
          try {
            await deadLetter(m, message, d.reason);
            stats.deadLettered++;
            safely('ack', () => m.ack());
            logger.warn(
              { consumer: name, subject: m.subject, seq: m.seq, reason: d.reason },
              'dead-lettered',
            );
          } catch (error) {
            lastError = `dead-letter: ${errorText(error)}`;
            logger.error({ consumer: name, error: lastError }, 'dead-letter publish failed; message naked');
            safely('nak', () => m.nak(Math.min(30_000, 1000 * 2 ** Math.min(5, message.deliveryAttempt))));
          }
          return;
      }
    } finally {
      inFlight.delete(m);
    }
  }

  async function run(): Promise<void> {
    let failures = 0;
    while (running) {
      let messages: ConsumerMessages | undefined;
      try {
        consumer ??= await js!.consumers.get(stream, name);
        messages = await consumer.consume({ max_messages: maxBuffered, expires: pullExpiresMs });
        current = messages;
        // close() takes effect through the iterator: the loop below ends and `closed()` resolves
        if (!running) void messages.close();
        const pull = messages;
        void (async () => {
          for await (const n of pull.status()) if (n.type === 'heartbeat') beat.beat(idleHeartbeatMs);
        })().catch(() => undefined);
        beat.beat(idleHeartbeatMs);
        for await (const m of messages) {
          failures = 0;
          beat.beat(idleHeartbeatMs);
          inFlight.set(m, performance.now());
          const key = m.headers?.get(`${NATS_CE_PREFIX}partitionkey`) || null;
          void limiter
            .run(key, () => handle(m))
            .catch((error: unknown) => {
              lastError = errorText(error);
            });
          // While a handler's dependency is down (paused) every message delivered is taken in and held, tracked
          // for progress acks: none waits untracked in the pull's buffer until its ack wait ends. What the server
          // delivers is capped by the durable's maxAckPending, so the consumer takes nothing new beyond it.
          while (limiter.size >= maxBuffered && !processor.pauseState().paused) {
            await Promise.race([limiter.whenBelow(maxBuffered), sleep(100)]);
          }
        }
        const closedWith = await messages.closed();
        if (closedWith instanceof Error) throw closedWith;
        if (!running) break;
        throw new BrokerError('connection', 'nats: consume ended unexpectedly');
      } catch (error) {
        current = undefined;
        if (!running) break;
        failures++;
        stats.reconnects++;
        lastError = errorText(error);
        logger.warn({ consumer: name, error: lastError }, 'nats consumer restarting');
        consumer = undefined;
        if (
          isApiError(error, JetStreamApiCodes.ConsumerNotFound) ||
          (error as Error)?.message?.includes('consumer not found') ||
          (error as Error)?.message?.includes('consumer deleted')
        ) {
          try {
            await ensureConsumer(jsm!);
          } catch (e) {
            lastError = errorText(e);
          }
        }
        const wait = Math.min(5000, 100 * 2 ** Math.min(failures, 6));
        beat.beat(wait);
        await sleep(wait);
      }
    }
  }

  const natsConsumer: NatsConsumer = {
    name,
    processor,
    async start() {
      if (running) return;
      opened ??= await openConnection(options, `cqrs-ts nats consumer ${name}`);
      const nc: NatsConnection = opened.nc;
      jsm ??= await jetstreamManager(nc);
      js ??= jsm.jetstream();
      if (dlStream !== undefined) {
        await ensureNatsStream({ connection: nc, name: dlStream, subjects: [dlSubject] });
      }
      await ensureConsumer(jsm);
      sender ??= createAckedSender(nc, { timeoutMs: publishTimeoutMs, inboxPrefix: '_INBOX' });
      if (statuses === undefined) {
        const watched = nc.status();
        statuses = watched;
        void (async () => {
          for await (const s of watched) if (s.type === 'reconnect') stats.reconnects++;
        })().catch(() => undefined);
      }
      running = true;
      beat.running(true);
      if (stopSignal.signal.aborted) stopSignal = new AbortController();
      // Every third of ackWait, messages held for longer than that (running or queued behind their key) get a
      // progress ack, so the first one goes out by 2/3 of ackWait and JetStream does not redeliver them meanwhile.
      const third = Math.max(300, Math.floor(ackWaitMs / 3));
      progressTimer = setInterval(() => {
        const before = performance.now() - third;
        for (const [m, since] of inFlight) if (since <= before) safely('working', () => m.working());
      }, third);
      progressTimer.unref?.();
      loop = run();
    },
    async stop() {
      if (!running && loop === undefined) {
        await close();
        return;
      }
      running = false;
      beat.running(false);
      stopSignal.abort();
      wake?.();
      void current?.close().catch(() => undefined);
      let timer: ReturnType<typeof setTimeout> | undefined;
      const timedOut = new Promise<void>((resolve) => {
        timer = setTimeout(resolve, stopTimeoutMs);
      });
      try {
        await Promise.race([
          (async () => {
            await loop;
            await limiter.drain();
          })(),
          timedOut,
        ]);
      } finally {
        clearTimeout(timer);
      }
      loop = undefined;
      await close();
    },
    health() {
      return {
        running,
        connected: sender?.connected ?? false,
        inFlight: inFlight.size,
        ...stats,
        lastError,
        ...processor.pauseState(),
        heartbeat: beat.read(),
      };
    },
    [Symbol.asyncDispose]() {
      return natsConsumer.stop();
    },
  };

  async function close(): Promise<void> {
    // Acks still waiting for the end of the turn go out now, each confirmed by the server (JetStream applies acks
    // after it answered the connection's flush), so a stopped consumer leaves what it handled acknowledged.
    let confirming: Promise<unknown>[] = [];
    if (acksDue !== undefined) {
      clearImmediate(acksDue);
      acksDue = undefined;
      confirming = acks.map((m) => m.ackAck().catch(() => false));
      acks = [];
    }
    clearInterval(progressTimer);
    progressTimer = undefined;
    (statuses as { stop?: () => void } | undefined)?.stop?.();
    statuses = undefined;
    const o = opened;
    if (o === undefined) return;
    if (!o.nc.isClosed()) {
      // acks and naks reach the server; a down server never answers the flush: unacked messages come back
      let t: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([
        Promise.all([o.nc.flush().catch(() => undefined), ...confirming]),
        new Promise<void>((resolve) => {
          t = setTimeout(resolve, 2000);
        }),
      ]);
      clearTimeout(t);
    }
    sender?.close();
    sender = undefined;
    consumer = undefined;
    js = undefined;
    jsm = undefined;
    opened = undefined;
    if (o.owned) await o.nc.close().catch(() => undefined);
  }

  return natsConsumer;
}
