import type { AnyEvent } from '@cqrs-ts/core';
import { BrokerError, ConfigurationError } from '@cqrs-ts/core';
import type { MessagePublisher, OutboxMessage, PublishResult } from '@cqrs-ts/core/spi';
import {
  compressData,
  createAvailabilityListeners,
  createOutboxEncoder,
  errorText,
  toOutboxMessages,
} from '@cqrs-ts/core/spi';
import type { ConfirmChannel, Options } from 'amqplib';
import { checkConnectionOptions, createChannelSource } from './rabbitmq-connection.ts';
import { rabbitError } from './rabbitmq-errors.ts';
import type { RabbitPublisherOptions } from './rabbitmq-options.ts';
import { CLOUDEVENTS_AMQP_PREFIX } from './rabbitmq-options.ts';

/**
 * A {@link MessagePublisher} over RabbitMQ publisher confirms, for the outbox relay and for direct use.
 * Call `close()` (or `await using`) when done.
 */
export interface RabbitPublisher extends MessagePublisher, AsyncDisposable {
  /** Encodes events as CloudEvents (like the outbox does) and publishes them; one result per event. */
  publishEvents(
    events: readonly AnyEvent[],
    options?: { readonly signal?: AbortSignal },
  ): Promise<readonly PublishResult[]>;
  /** Messages sent and not yet confirmed. */
  readonly inFlight: number;
  /**
   * Calls `listener` each time a channel is open again after it was lost (a relay whose circuit opened then
   * probes at once). While it has listeners the publisher re-opens a lost channel in the background, at the
   * `reconnect` backoff, instead of waiting for the next publish. Returns a function that removes it.
   */
  onAvailable(listener: () => void): () => void;
  /** Fails what is still in flight and closes the channel (and the connection the publisher opened). */
  close(): Promise<void>;
}

interface Batch {
  readonly messages: readonly OutboxMessage[];
  readonly results: PublishResult[];
  /** `next[i]`: the following message of the same key, sent after `i` is confirmed; -1 if none. */
  readonly next: Int32Array | undefined;
  remaining: number;
  done: boolean;
  resolve(results: readonly PublishResult[]): void;
}

interface Entry {
  readonly batch: Batch;
  readonly index: number;
  readonly id: string;
  readonly channel: ConfirmChannel;
  returned: { code: number; text: string } | undefined;
  /** Other in-flight entries with the same message id (rare). */
  same: Entry[] | undefined;
}

const OK: PublishResult = Object.freeze({ ok: true });
/** The shortest wait before a lost channel is opened again in the background. */
const MIN_REOPEN_MS = 10;
const MAX_SHORTSTR = 255;

function fail(error: BrokerError): PublishResult {
  return { ok: false, error, retryable: error.retryable };
}

/** Fits an AMQP short string (255 bytes). @internal */
function shortStr(s: string): boolean {
  return s.length <= 85 || (s.length <= MAX_SHORTSTR && Buffer.byteLength(s) <= MAX_SHORTSTR);
}

function toBuffer(data: Uint8Array): Buffer {
  return Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
}

/**
 * Creates a RabbitMQ publisher: a durable exchange (topic by default), persistent messages (delivery mode 2),
 * publisher confirms, pipelined (up to `maxInFlight` unconfirmed messages; each message's result comes from
 * its own confirm).
 *
 * Wire format, the CloudEvents AMQP binding: every context attribute is a header prefixed `cloudEvents:`,
 * `datacontenttype` is the AMQP `content-type` property; also `message-id` = event id, `timestamp` = event
 * time (seconds), `correlation-id`, `type` = event type, `app-id` = source (when short enough). The ordering key
 * travels as `cloudEvents:partitionkey` (and `cloudEvents:subject`).
 *
 * Key order (`capabilities.preservesKeyOrder: true`): inside one `publish` call, a message whose ordering key
 * appeared earlier in the batch is sent only after that earlier one is confirmed; if it failed (nacked,
 * returned as unroutable, channel lost) the later ones of its key fail as `skipped` without being sent. Messages of
 * different keys, or without a key, are pipelined freely.
 *
 * Failures are per message, `BrokerError`s: `unroutable` (mandatory message no queue took), `rejected` (nacked),
 * `connection` (channel or connection lost before the confirm: the message may or may not have been routed, so
 * it is published again and consumers dedupe with the inbox), `timeout`, `cancelled`, `too-large` and `invalid`
 * (not retryable: over `maxMessageBytes`, routing key over 255 bytes, header table over 64 KiB). After a lost connection the next `publish` reconnects (with
 * backoff, failing fast in between); with `onAvailable` listeners it reconnects in the background and tells them.
 *
 * @example
 * const publisher = createRabbitPublisher({ url: 'amqp://guest:guest@127.0.0.1:5672', exchange: 'events' });
 * const relay = createOutboxRelay({ store, publisher });
 */
export function createRabbitPublisher(options: RabbitPublisherOptions): RabbitPublisher {
  checkConnectionOptions('rabbitmq publisher', options);
  const exchange = options.exchange;
  if (
    typeof exchange !== 'string' ||
    Buffer.byteLength(exchange) > MAX_SHORTSTR ||
    exchange.startsWith('amq.')
  ) {
    throw new ConfigurationError(
      'rabbitmq publisher: exchange must be a name of at most 255 bytes, not amq.*',
    );
  }
  const exchangeType = options.exchangeType ?? 'topic';
  const mandatory = options.mandatory ?? true;
  const maxInFlight = options.maxInFlight ?? 1000;
  const maxBytes = options.maxMessageBytes ?? 16 * 1024 * 1024;
  const confirmTimeoutMs = options.confirmTimeoutMs ?? 30_000;
  for (const [name, v] of [
    ['maxInFlight', maxInFlight],
    ['maxMessageBytes', maxBytes],
    ['confirmTimeoutMs', confirmTimeoutMs],
  ] as const) {
    if (!Number.isInteger(v) || v < 1)
      throw new ConfigurationError(`rabbitmq publisher: ${name} must be an integer >= 1`);
  }
  const compression = options.compression;
  const routingKey =
    options.routingKey ??
    (exchangeType === 'x-consistent-hash'
      ? (m: OutboxMessage) => m.key ?? m.id
      : (m: OutboxMessage) => m.topic);
  const encoder = createOutboxEncoder({
    ...(options.source !== undefined ? { source: options.source } : {}),
    ...(options.serializer !== undefined ? { serializer: options.serializer } : {}),
    maxPayloadBytes: maxBytes,
  });

  const byId = new Map<string, Entry>();
  let inFlight = 0;
  let slotWaiters: Array<() => void> = [];
  let closed = false;

  const source = createChannelSource(options, async (channel) => {
    channel.on(
      'return',
      (msg: { properties: { messageId?: unknown }; fields: { replyCode: number; replyText: string } }) => {
        const id = msg.properties.messageId;
        if (typeof id !== 'string') return;
        const e = byId.get(id);
        if (e === undefined) return;
        let target: Entry | undefined = e.channel === channel && e.returned === undefined ? e : undefined;
        if (target === undefined && e.same !== undefined) {
          target = e.same.find((s) => s.channel === channel && s.returned === undefined);
        }
        if (target !== undefined)
          target.returned = { code: msg.fields.replyCode, text: msg.fields.replyText };
      },
    );
    channel.on('drain', wakeSlots);
    if (options.declareExchange !== false) {
      try {
        await channel.assertExchange(exchange, exchangeType, { durable: true });
      } catch (error) {
        throw rabbitError('topology', `declaring exchange ${exchange}: ${errorText(error)}`, {
          cause: error,
        });
      }
    }
  });
  source.onClose(() => {
    wakeSlots();
    channelLost();
  });

  // Back after an outage: while someone listens (a relay whose circuit may open), a lost channel is opened again
  // in the background, at the source's backoff, and the listeners are told once it is open. Nobody listening,
  // the next publish reconnects as before; close() clears the listeners, which stops the watching.
  let lost = false;
  let watching = false;
  let reopenTimer: NodeJS.Timeout | undefined;
  const available = createAvailabilityListeners(() => {
    watching = true;
    if (lost) scheduleReopen();
    return () => {
      watching = false;
      clearTimeout(reopenTimer);
      reopenTimer = undefined;
    };
  });

  function channelLost(): void {
    lost = true;
    scheduleReopen();
  }

  function scheduleReopen(): void {
    if (!watching || reopenTimer !== undefined || !source.reopenable) return;
    reopenTimer = setTimeout(reopen, Math.max(MIN_REOPEN_MS, source.retryInMs));
    reopenTimer.unref();
  }

  function reopen(): void {
    reopenTimer = undefined;
    if (!watching) return;
    source.channel().then(() => {
      if (!lost) return;
      lost = false;
      available.notify();
    }, scheduleReopen);
  }

  function wakeSlots(): void {
    if (slotWaiters.length === 0) return;
    const w = slotWaiters;
    slotWaiters = [];
    for (const r of w) r();
  }

  const waitSlot = () => new Promise<void>((resolve) => slotWaiters.push(resolve));

  function register(e: Entry): void {
    const existing = byId.get(e.id);
    if (existing === undefined) byId.set(e.id, e);
    else if (existing.same === undefined) existing.same = [e];
    else existing.same.push(e);
  }

  function unregister(e: Entry): void {
    const existing = byId.get(e.id);
    if (existing === e) {
      const same = e.same;
      if (same === undefined || same.length === 0) byId.delete(e.id);
      else {
        const head = same.shift()!;
        head.same = same;
        byId.set(e.id, head);
      }
    } else if (existing?.same !== undefined) {
      const k = existing.same.indexOf(e);
      if (k >= 0) existing.same.splice(k, 1);
    }
  }

  function finish(batch: Batch): void {
    batch.done = true;
    batch.resolve(batch.results);
  }

  /** Records the result of message `i` and sends (or fails) the next one of its key. */
  function settle(batch: Batch, i: number, result: PublishResult): void {
    if (batch.done || batch.results[i] !== undefined) return;
    batch.results[i] = result;
    batch.remaining--;
    const next = batch.next === undefined ? -1 : batch.next[i]!;
    if (next >= 0) {
      if (result.ok) {
        const ch = source.current;
        if (ch === undefined) settle(batch, next, fail(rabbitError('connection', 'channel closed')));
        else sendOne(batch, next, ch);
      } else {
        const key = batch.messages[next]!.key;
        settle(
          batch,
          next,
          fail(rabbitError('skipped', `not sent: an earlier message with key ${key} failed`)),
        );
      }
    }
    if (batch.remaining === 0) finish(batch);
  }

  function onConfirm(e: Entry, err: unknown): void {
    inFlight--;
    unregister(e);
    if (inFlight < maxInFlight) wakeSlots();
    let result: PublishResult;
    if (err != null) {
      const closedChannel = source.current !== e.channel || (err as Error).message === 'channel closed';
      result = fail(
        closedChannel
          ? rabbitError('connection', 'channel closed before the confirm', { cause: err })
          : rabbitError('rejected', 'the broker nacked the message', { cause: err }),
      );
    } else if (e.returned !== undefined) {
      result = fail(
        rabbitError(
          'unroutable',
          `no queue is bound for ${exchange} / ${JSON.stringify(routingKeyOf(e.batch.messages[e.index]!))}: ${e.returned.text}`,
          { replyCode: e.returned.code },
        ),
      );
    } else result = OK;
    settle(e.batch, e.index, result);
  }

  function routingKeyOf(m: OutboxMessage): string {
    try {
      return routingKey(m);
    } catch {
      return '';
    }
  }

  /** Sends message `i`; returns false when the socket buffer is full (wait for `drain`). */
  function sendOne(batch: Batch, i: number, ch: ConfirmChannel): boolean {
    const m = batch.messages[i]!;
    let rk: string;
    let body: Uint8Array;
    let props: Options.Publish;
    try {
      if (
        m === null ||
        typeof m !== 'object' ||
        typeof m.id !== 'string' ||
        m.id.length === 0 ||
        !shortStr(m.id)
      )
        throw rabbitError('invalid', `message ${i} has no id of 1..255 bytes`);
      if (!(m.body instanceof Uint8Array))
        throw rabbitError('invalid', `message ${m.id.slice(0, 100)}: body is not bytes`);
      rk = routingKey(m);
      if (typeof rk !== 'string' || !shortStr(rk)) {
        throw rabbitError(
          'invalid',
          `message ${m.id.slice(0, 100)}: routing key must be a string of at most 255 bytes`,
        );
      }
      let attrs = m.headers ?? {};
      body = m.body;
      if (compression !== undefined && body.byteLength >= (compression.thresholdBytes ?? 1024)) {
        const copy = { ...attrs };
        body = compressData(body, copy, compression);
        attrs = copy;
      }
      if (body.byteLength > maxBytes) {
        throw rabbitError(
          'too-large',
          `message ${m.id.slice(0, 100)}: ${body.byteLength} bytes, more than ${maxBytes}`,
        );
      }
      props = buildProperties(m, attrs, mandatory);
    } catch (error) {
      settle(
        batch,
        i,
        fail(
          error instanceof BrokerError ? error : rabbitError('invalid', errorText(error), { cause: error }),
        ),
      );
      return true;
    }
    const e: Entry = { batch, index: i, id: m.id, channel: ch, returned: undefined, same: undefined };
    register(e);
    inFlight++;
    try {
      return ch.publish(exchange, rk, toBuffer(body), props, (err) => onConfirm(e, err));
    } catch (error) {
      inFlight--;
      unregister(e);
      const closedChannel = (error as Error)?.name === 'IllegalOperationError';
      settle(
        batch,
        i,
        fail(
          closedChannel
            ? rabbitError('connection', errorText(error), { cause: error })
            : rabbitError('invalid', `message ${m.id.slice(0, 100)}: ${errorText(error)}`, {
                cause: error,
              }),
        ),
      );
      return true;
    }
  }

  function failRest(batch: Batch, error: BrokerError): void {
    for (let i = 0; i < batch.messages.length; i++) {
      if (batch.results[i] === undefined) {
        batch.results[i] = fail(error);
        batch.remaining--;
      }
    }
    if (!batch.done) finish(batch);
    wakeSlots(); // the batch's loop may be waiting for a slot or a drain that will not come
  }

  async function publish(
    messages: readonly OutboxMessage[],
    opts?: { readonly signal?: AbortSignal },
  ): Promise<readonly PublishResult[]> {
    if (!Array.isArray(messages))
      throw new ConfigurationError('rabbitmq publisher: publish expects an array');
    const n = messages.length;
    if (n === 0) return [];
    if (closed) return messages.map(() => fail(rabbitError('closed', 'publisher is closed')));
    // Chain messages that share a key with an earlier message of this batch.
    let next: Int32Array | undefined;
    let deferred: Uint8Array | undefined;
    let last: Map<string, number> | undefined;
    for (let i = 0; i < n; i++) {
      const key = messages[i]?.key;
      if (typeof key !== 'string') continue;
      last ??= new Map();
      const prev = last.get(key);
      if (prev !== undefined) {
        next ??= new Int32Array(n).fill(-1);
        deferred ??= new Uint8Array(n);
        next[prev] = i;
        deferred[i] = 1;
      }
      last.set(key, i);
    }
    let resolve!: (r: readonly PublishResult[]) => void;
    const promise = new Promise<readonly PublishResult[]>((r) => {
      resolve = r;
    });
    const batch: Batch = { messages, results: new Array(n), next, remaining: n, done: false, resolve };
    // The whole call is bounded, the wait for a channel included: a broker that accepts the connection and then
    // says nothing (hung, black-holed) gets `timeout`, never a publish that does not settle.
    const timer = setTimeout(
      () => failRest(batch, rabbitError('timeout', `no confirm within ${confirmTimeoutMs} ms`)),
      confirmTimeoutMs,
    );
    const signal = opts?.signal;
    const onAbort = () =>
      failRest(batch, rabbitError('cancelled', 'publish aborted', { cause: signal?.reason }));
    if (signal !== undefined) {
      if (signal.aborted) onAbort();
      else signal.addEventListener('abort', onAbort, { once: true });
    }
    try {
      let ch: ConfirmChannel;
      try {
        const opened = await Promise.race([source.channel(), promise]);
        if (batch.done) return await promise;
        ch = opened as ConfirmChannel;
      } catch (error) {
        const e =
          error instanceof BrokerError
            ? error
            : rabbitError('connection', errorText(error), { cause: error });
        if (e.retryable) channelLost();
        failRest(batch, e);
        return await promise;
      }
      for (let i = 0; i < n && !batch.done; i++) {
        if (deferred !== undefined && deferred[i] === 1) continue;
        while (inFlight >= maxInFlight && !batch.done && source.current === ch) await waitSlot();
        if (batch.done) break;
        if (source.current !== ch) {
          failRest(batch, rabbitError('connection', 'channel closed while publishing'));
          break;
        }
        if (!sendOne(batch, i, ch)) {
          // socket buffer full: let it drain (or the channel close, or the batch end) before writing more
          if (i + 1 < n && source.current === ch) await waitSlot();
        }
      }
      return await promise;
    } finally {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
    }
  }

  const publisher: RabbitPublisher = {
    capabilities: Object.freeze({ preservesKeyOrder: true }),
    publish,
    publishEvents(events, opts) {
      let messages: OutboxMessage[];
      try {
        messages = toOutboxMessages(encoder.encode(events, Date.now()));
      } catch (error) {
        return Promise.reject(error);
      }
      return publish(messages, opts);
    },
    get inFlight() {
      return inFlight;
    },
    onAvailable: available.add,
    async close() {
      if (closed) return;
      closed = true;
      available.clear();
      await source.close();
      wakeSlots();
    },
    [Symbol.asyncDispose]() {
      return publisher.close();
    },
  };
  return publisher;
}

/**
 * The AMQP properties of one message: CloudEvents attributes as `cloudEvents:` headers (the AMQP binding),
 * `datacontenttype` as `contentType`, persistent delivery. @internal
 */
export function buildProperties(
  m: OutboxMessage,
  attrs: Readonly<Record<string, string>>,
  mandatory: boolean,
): Options.Publish {
  const headers: Record<string, string> = {};
  let contentType: string | undefined;
  for (const name in attrs) {
    const v = attrs[name]!;
    if (name === 'datacontenttype') contentType = v;
    else headers[CLOUDEVENTS_AMQP_PREFIX + name] = v;
  }
  const props: Options.Publish = {
    headers,
    deliveryMode: 2,
    mandatory,
    messageId: m.id,
    timestamp: Math.floor(
      (attrs.time !== undefined ? Date.parse(attrs.time) || Date.now() : Date.now()) / 1000,
    ),
  };
  if (shortStr(m.type)) props.type = m.type;
  if (contentType !== undefined) props.contentType = contentType;
  if (attrs.contentencoding !== undefined) props.contentEncoding = attrs.contentencoding;
  const corr = attrs.correlationid;
  if (corr !== undefined && shortStr(corr)) props.correlationId = corr;
  const src = attrs.source;
  if (src !== undefined && shortStr(src)) props.appId = src;
  return props;
}
