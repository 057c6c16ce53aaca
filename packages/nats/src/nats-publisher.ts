import type { AnyEvent } from '@cqrs-ts/core';
import { BrokerError, ConfigurationError } from '@cqrs-ts/core';
import type {
  MessagePublisher,
  OutboxEncoder,
  OutboxMessage,
  PublisherCapabilities,
  PublishResult,
} from '@cqrs-ts/core/spi';
import {
  compressData,
  createAvailabilityListeners,
  createOutboxEncoder,
  errorText,
  percentEncodeHeader,
  toOutboxMessages,
} from '@cqrs-ts/core/spi';
import type { MsgHdrs, NatsConnection } from '@nats-io/transport-node';
import { headers as createHeaders } from '@nats-io/transport-node';
import { type AckedSender, type AckOwner, createAckedSender } from './nats-acked-sender.ts';
import {
  assertInt,
  assertName,
  isValidSubject,
  type NatsPublisherOptions,
  openConnection,
} from './nats-options.ts';

/** The CloudEvents NATS protocol binding's header prefix. */
export const NATS_CE_PREFIX = 'ce-';

/** What {@link NatsPublisher.health} reports. */
export interface NatsPublisherHealth {
  readonly connected: boolean;
  /** Messages awaiting their PubAck. */
  readonly inFlight: number;
  /** Messages JetStream acknowledged (duplicates included). */
  readonly published: number;
  readonly failed: number;
  /** The most recent failure, cleared once a message is published again. */
  readonly lastError: string | undefined;
}

/**
 * A JetStream {@link MessagePublisher}: for the outbox relay (`publish`) and for direct use (`publishEvents`).
 * Every message is persisted and acknowledged by JetStream; `Nats-Msg-Id` is the event's source and id, so the
 * stream's duplicate window drops re-publishes. Declares `preservesKeyOrder`: a message is sent only after the previous
 * message with the same key in the call was acknowledged, and after a failure the rest of that key is reported
 * failed without being sent. Messages of different keys (and keyless ones) are pipelined.
 */
export interface NatsPublisher extends MessagePublisher, AsyncDisposable {
  /** Encodes events (CloudEvents attributes + serializer) and publishes them; one result per event. */
  publishEvents(
    events: readonly AnyEvent[],
    options?: { readonly signal?: AbortSignal },
  ): Promise<readonly PublishResult[]>;
  /** The subject a message is published to. */
  subjectOf(message: Pick<OutboxMessage, 'topic'> & Partial<OutboxMessage>): string;
  /**
   * Calls `listener` each time the publisher's connection is re-established after a loss (a relay with an open
   * circuit then probes at once); returns a function that removes it.
   */
  onAvailable(listener: () => void): () => void;
  health(): NatsPublisherHealth;
  /** Fails messages still awaiting a PubAck, stops listening, closes the connection if cqrs-ts opened it. */
  close(): Promise<void>;
}

const OK: PublishResult = Object.freeze({ ok: true });
const CAPABILITIES: PublisherCapabilities = Object.freeze({ preservesKeyOrder: true });
const SUBJECT_CACHE_MAX = 4096;
const NAME = 'cqrs-ts nats publisher';

/**
 * The `Nats-Msg-Id` of a message: `<source> <id>` (the message's id, the CloudEvents id for every event the relay
 * or `publishEvents` sends), each percent-encoded: CloudEvents identity is source and id, so two producers reusing
 * an id are not dropped as duplicates. `id` alone when there is no source. @internal
 */
export function natsMessageId(attributes: Readonly<Record<string, string>>, id: string): string {
  const source = attributes.source;
  return source === undefined
    ? percentEncodeHeader(id)
    : `${percentEncodeHeader(source)} ${percentEncodeHeader(id)}`;
}

/**
 * Builds the NATS headers of one message: `Nats-Msg-Id`, `content-type` and `ce-<attribute>` (values
 * percent-encoded as the NATS binding asks). @internal
 */
export function natsHeadersFor(
  id: string,
  attributes: Readonly<Record<string, string>>,
  expectStream: string | undefined,
): MsgHdrs {
  const h = createHeaders();
  h.set('Nats-Msg-Id', natsMessageId(attributes, id));
  if (expectStream !== undefined) h.set('Nats-Expected-Stream', expectStream);
  for (const name in attributes) {
    const value = attributes[name];
    if (typeof value !== 'string') continue;
    if (name === 'datacontenttype') h.set('content-type', value);
    else h.set(NATS_CE_PREFIX + name, percentEncodeHeader(value));
  }
  return h;
}

interface Shared {
  /** Replaced when cqrs-ts reopens a connection it owns that closed. */
  sender: AckedSender;
  readonly maxInFlight: number;
  readonly waiting: Set<PublishCall>;
  subjectOf(message: OutboxMessage): string;
  encodeData(message: OutboxMessage): { data: Uint8Array; attributes: Readonly<Record<string, string>> };
  readonly expectStream: string | undefined;
  count(ok: boolean, error?: unknown): void;
}

/** One `publish` call: per-key chains, a ready queue and the results. */
class PublishCall implements AckOwner {
  readonly batch: readonly OutboxMessage[];
  readonly results: PublishResult[];
  readonly next: Int32Array;
  readonly ready: Int32Array;
  readonly shared: Shared;
  head = 0;
  tail = 0;
  remaining: number;
  pumping = false;
  cancelled: unknown = undefined;
  resolve!: (results: readonly PublishResult[]) => void;
  readonly done: Promise<readonly PublishResult[]>;

  constructor(batch: readonly OutboxMessage[], shared: Shared) {
    const n = batch.length;
    this.batch = batch;
    this.shared = shared;
    this.results = new Array(n);
    this.remaining = n;
    this.next = new Int32Array(n).fill(-1);
    this.ready = new Int32Array(n);
    this.done = new Promise((resolve) => {
      this.resolve = resolve;
    });
    let last: Map<string, number> | undefined;
    for (let i = 0; i < n; i++) {
      const key = batch[i]!.key;
      if (key === null || key === undefined) {
        this.ready[this.tail++] = i;
        continue;
      }
      last ??= new Map();
      const previous = last.get(key);
      if (previous === undefined) this.ready[this.tail++] = i;
      else this.next[previous] = i;
      last.set(key, i);
    }
  }

  pump(): void {
    if (this.pumping) return;
    this.pumping = true;
    const { sender, maxInFlight } = this.shared;
    try {
      while (this.head < this.tail) {
        if (this.cancelled === undefined && sender.inFlight >= maxInFlight) {
          this.shared.waiting.add(this);
          return;
        }
        const i = this.ready[this.head++]!;
        this.sendOne(i);
      }
      this.shared.waiting.delete(this);
    } finally {
      this.pumping = false;
    }
  }

  sendOne(i: number): void {
    if (this.cancelled !== undefined) {
      this.settle(
        i,
        new BrokerError('cancelled', 'nats: publish cancelled before sending', { cause: this.cancelled }),
      );
      return;
    }
    const m = this.batch[i]!;
    const shared = this.shared;
    let subject: string;
    let data: Uint8Array;
    let h: MsgHdrs;
    try {
      subject = shared.subjectOf(m);
      const encoded = shared.encodeData(m);
      data = encoded.data;
      h = natsHeadersFor(m.id, encoded.attributes, shared.expectStream);
    } catch (cause) {
      this.settle(
        i,
        cause instanceof BrokerError
          ? cause
          : new BrokerError('invalid', `nats: message ${m.id}: ${errorText(cause)}`, { cause }),
      );
      return;
    }
    const error = shared.sender.send(subject, data, h, this, i);
    if (error !== undefined) this.settle(i, error);
  }

  settle(i: number, error: BrokerError | undefined): void {
    if (this.results[i] !== undefined) return;
    this.results[i] = error === undefined ? OK : { ok: false, error, retryable: error.retryable };
    this.shared.count(error === undefined, error);
    this.remaining--;
    const j = this.next[i]!;
    if (j >= 0) {
      if (error === undefined) this.ready[this.tail++] = j;
      else this.skipChain(j, this.batch[i]!.key ?? '');
    }
    if (this.remaining === 0) {
      this.shared.waiting.delete(this);
      this.resolve(this.results);
    } else this.pump();
  }

  skipChain(from: number, key: string): void {
    const error = new BrokerError('skipped', `nats: not sent: an earlier message with key ${key} failed`);
    const result: PublishResult = { ok: false, error, retryable: true };
    for (let j = from; j >= 0; j = this.next[j]!) {
      this.results[j] = result;
      this.shared.count(false);
      this.remaining--;
    }
  }

  cancel(reason: unknown): void {
    if (this.cancelled !== undefined) return;
    this.cancelled = reason ?? new Error('aborted');
    this.pump();
  }
}

/**
 * Creates a JetStream publisher. Resolves once connected (when it opens the connection itself).
 * @throws ConfigurationError on bad options.
 */
export async function createNatsPublisher(options: NatsPublisherOptions = {}): Promise<NatsPublisher> {
  const prefix = options.subjectPrefix ?? 'cqrs';
  if (!isValidSubject(prefix)) {
    throw new ConfigurationError(`nats publisher: invalid subjectPrefix ${JSON.stringify(String(prefix))}`);
  }
  const subjectFn = options.subject;
  if (subjectFn !== undefined && typeof subjectFn !== 'function') {
    throw new ConfigurationError('nats publisher: subject must be a function');
  }
  const timeoutMs = assertInt(options.timeoutMs ?? 5000, 'nats publisher: timeoutMs', 1, 600_000);
  const maxInFlight = assertInt(options.maxInFlight ?? 1024, 'nats publisher: maxInFlight', 1, 1_000_000);
  const inboxPrefix = options.inboxPrefix ?? '_INBOX';
  if (!isValidSubject(inboxPrefix)) {
    throw new ConfigurationError(
      `nats publisher: invalid inboxPrefix ${JSON.stringify(String(inboxPrefix))}`,
    );
  }
  const expectStream =
    options.expectStream === undefined
      ? undefined
      : assertName(options.expectStream, 'nats publisher: expectStream');
  const compression = options.compression;
  if (compression !== undefined && compression.algorithm !== 'gzip' && compression.algorithm !== 'br') {
    throw new ConfigurationError(`nats publisher: unknown compression ${String(compression.algorithm)}`);
  }
  const threshold = compression?.thresholdBytes ?? 1024;
  const encoder: OutboxEncoder = createOutboxEncoder({
    ...(options.source !== undefined ? { source: options.source } : {}),
    ...(options.serializer !== undefined ? { serializer: options.serializer } : {}),
    ...(options.maxPayloadBytes !== undefined ? { maxPayloadBytes: options.maxPayloadBytes } : {}),
  });

  const opened = await openConnection(options, NAME);
  const owned = opened.owned;
  let nc = opened.nc;
  let published = 0;
  let failed = 0;
  let lastError: string | undefined;
  let closed = false;

  const subjects = new Map<string, string>();
  const subjectOf = (m: Pick<OutboxMessage, 'topic'> & Partial<OutboxMessage>): string => {
    if (subjectFn !== undefined) {
      const s = subjectFn(m as OutboxMessage);
      if (!isValidSubject(s)) {
        throw new BrokerError(
          'invalid',
          `subject() returned an invalid subject ${JSON.stringify(String(s).slice(0, 200))}`,
        );
      }
      return s;
    }
    const topic = m.topic;
    const cached = subjects.get(topic);
    if (cached !== undefined) return cached;
    const s = `${prefix}.${topic}`;
    if (typeof topic !== 'string' || !isValidSubject(s)) {
      throw new BrokerError(
        'invalid',
        `topic ${JSON.stringify(String(topic).slice(0, 200))} is not a valid NATS subject token sequence`,
      );
    }
    if (subjects.size < SUBJECT_CACHE_MAX) subjects.set(topic, s);
    return s;
  };

  const onSettled = () => {
    const sender = shared.sender;
    if (shared.waiting.size === 0 || sender.inFlight >= maxInFlight) return;
    for (const call of [...shared.waiting]) {
      call.pump();
      if (sender.inFlight >= maxInFlight) break;
    }
  };
  const available = createAvailabilityListeners();
  const attach = (connection: NatsConnection): AckedSender => {
    const sender = createAckedSender(connection, { timeoutMs, inboxPrefix });
    sender.onSettled = onSettled;
    sender.onReconnected = available.notify;
    return sender;
  };

  const shared: Shared = {
    sender: attach(nc),
    maxInFlight,
    waiting: new Set(),
    subjectOf,
    expectStream,
    encodeData(m) {
      const body = m.body;
      if (!(body instanceof Uint8Array))
        throw new BrokerError('invalid', `nats: message ${m.id}: body is not bytes`);
      if (compression === undefined || body.byteLength < threshold)
        return { data: body, attributes: m.headers };
      const attributes: Record<string, string> = { ...m.headers };
      return { data: compressData(body, attributes, compression), attributes };
    },
    count(ok, error) {
      if (ok) {
        published++;
        lastError = undefined; // publishing works again: health shows no stale failure
      } else {
        failed++;
        if (error !== undefined) lastError = errorText(error);
      }
    },
  };
  // A connection cqrs-ts opened reconnects for ever by default, but it can still close (its
  // connectionOptions.maxReconnectAttempts spent, an authorization error): then the next publish opens a new one
  // (one attempt, no wait while the server is down), so the publisher comes back with the server instead of
  // failing every message as `closed` for good.
  let reopening: Promise<void> | undefined;
  const reopen = (): Promise<void> =>
    (reopening ??= (async () => {
      try {
        const next = await openConnection(
          { ...options, connectionOptions: { ...options.connectionOptions, waitOnFirstConnect: false } },
          NAME,
        );
        if (closed) {
          await next.nc.close().catch(() => undefined);
          return;
        }
        shared.sender.close();
        nc = next.nc;
        shared.sender = attach(nc);
        available.notify();
      } catch {
        // still unreachable: this call's messages fail as `closed` (the destination is down); the next call retries
      } finally {
        reopening = undefined;
      }
    })());

  const publish = async (
    batch: readonly OutboxMessage[],
    opts?: { readonly signal?: AbortSignal },
  ): Promise<readonly PublishResult[]> => {
    if (!Array.isArray(batch)) throw new ConfigurationError('nats publisher: publish expects an array');
    if (closed) throw new BrokerError('closed', 'nats: publisher is closed');
    if (batch.length === 0) return [];
    if (owned && nc.isClosed()) await reopen();
    const call = new PublishCall(batch, shared);
    const signal = opts?.signal;
    if (signal?.aborted) call.cancel(signal.reason);
    const onAbort = () => call.cancel(signal?.reason);
    signal?.addEventListener('abort', onAbort, { once: true });
    call.pump();
    try {
      return await call.done;
    } finally {
      signal?.removeEventListener('abort', onAbort);
    }
  };

  const publisher: NatsPublisher = {
    capabilities: CAPABILITIES,
    publish,
    publishEvents(events, opts) {
      let records: ReturnType<OutboxEncoder['encode']>;
      try {
        records = encoder.encode(events, Date.now());
      } catch (error) {
        return Promise.reject(error);
      }
      const messages = toOutboxMessages(records);
      return publish(messages, opts);
    },
    subjectOf,
    onAvailable: available.add,
    health() {
      const sender = shared.sender;
      return { connected: sender.connected, inFlight: sender.inFlight, published, failed, lastError };
    },
    async close() {
      if (closed) return;
      closed = true;
      available.clear();
      shared.sender.close();
      if (owned) await nc.close().catch(() => undefined);
    },
    [Symbol.asyncDispose]() {
      return publisher.close();
    },
  };
  return publisher;
}
