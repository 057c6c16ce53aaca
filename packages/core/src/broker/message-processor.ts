import { AsyncLocalStorage } from 'node:async_hooks';
import { createHash } from 'node:crypto';
import { runWithContext } from '../context/ambient-context.ts';
import { ConfigurationError } from '../errors/cqrs-error.ts';
import { isRetryable as defaultIsRetryable } from '../errors/retryable.ts';
import { isUnavailableError } from '../errors/unavailable.ts';
import type { InboxGuard } from '../inbox/inbox-guard.ts';
import type { AnyEvent } from '../messages/message.ts';
import type { MessageCatalog } from '../messages/message-catalog.ts';
import type { BackoffOptions } from '../shared/backoff.ts';
import { backoffDelay } from '../shared/backoff.ts';
import { errorText } from '../shared/error-text.ts';
import {
  type ConsumeDispositionContext,
  consumeChannel,
  consumeDispositionChannel,
} from '../shared/tracing.ts';
import type { CloudEventAttributes, EnvelopeDecoder, PayloadSerializer } from './envelope.ts';
import { createEnvelopeDecoder, EnvelopeError } from './envelope.ts';

/** One message as a broker consumer received it, with the binding prefix already removed from attributes. */
export interface IncomingMessage {
  readonly attributes: CloudEventAttributes;
  readonly data: Uint8Array;
  /** 1 on first delivery; the broker's redelivery count + 1 afterwards. */
  readonly deliveryAttempt: number;
  /** Topic, subject, stream or queue it came from (for logs and dead letters). */
  readonly source: string;
}

/** What the consumer must do with a message once it was processed. */
export type Disposition =
  | { readonly action: 'ack'; readonly outcome: 'handled' | 'duplicate' }
  | { readonly action: 'retry'; readonly delayMs: number; readonly error: unknown }
  | { readonly action: 'dead-letter'; readonly reason: string; readonly error: unknown }
  /**
   * Not processed: the consumer stopped (its `signal` aborted) while the message was held because the handler's
   * dependency is down. Give it back without counting an attempt where the broker allows it.
   */
  | { readonly action: 'release'; readonly error: unknown };

/**
 * Pausing a consumer while a handler's dependency is down. A handler failure that says so (see `isUnavailable`:
 * a connection refused or lost, a timeout, a database or broker unavailable) is not the message's fault: the
 * message is held, unacknowledged and with no attempt spent, and the processor pauses: messages that arrive
 * meanwhile wait (the consumers stop fetching), and one held message at a time probes the dependency, first after
 * `probeIntervalMs`, then at doubling intervals up to `maxProbeIntervalMs`. The first probe that gets an answer
 * (success, or a failure of the message's own) resumes everything at once.
 */
export interface ConsumerPauseOptions {
  /** Wait before the first probe after the pause, in ms. @default 200 */
  readonly probeIntervalMs?: number;
  /** Longest wait between probes (the wait doubles per failed probe), in ms. @default 1000 */
  readonly maxProbeIntervalMs?: number;
  /** Which handler errors mean "a dependency is down" rather than "this message is bad". @default isUnavailableError */
  readonly isUnavailable?: (error: unknown) => boolean;
}

/** The pause state of a processor (see {@link ConsumerPauseOptions}), reported by every consumer's `health()`. */
export interface ProcessorPauseState {
  /** A handler's dependency is down: the consumer holds its messages and probes. */
  readonly paused: boolean;
  /** Epoch ms since which it has been paused, `undefined` when not paused. */
  readonly pausedSince: number | undefined;
  /** Times it paused since it was created. */
  readonly pauses: number;
}

/** What a custom `handle` function receives besides the event. */
export interface ConsumerHandlerContext {
  /** The inbox transaction when an inbox guard is configured. */
  readonly tx: unknown;
  /**
   * The event's CloudEvents attributes as received (in either content mode): the producer's `id`, `source`,
   * `subject`, `time` and unknown extensions. Also readable anywhere in the handling with `incomingCloudEvent()`.
   */
  readonly cloudEvent: CloudEventAttributes;
  readonly deliveryAttempt: number;
  readonly message: IncomingMessage;
}

/** Options of {@link createMessageProcessor}, shared by every broker consumer. */
export interface MessageProcessorOptions {
  /** Consumer name: the inbox's consumer key and the broker's durable/group name. 1..200 chars. */
  readonly name: string;
  /** Dispatches decoded events to its event handlers (`publish`, awaited). */
  readonly mediator?: { publish(event: AnyEvent): Promise<void> };
  /** Custom handling instead of (or besides) the mediator. */
  readonly handle?: (event: AnyEvent, context: ConsumerHandlerContext) => Promise<void> | void;
  /** Validates payloads; unknown types are dead-lettered. Without it events are passed unvalidated. */
  readonly catalog?: MessageCatalog;
  /** Extra payload serializers (JSON is built in), e.g. protobuf. */
  readonly serializers?: readonly PayloadSerializer[];
  /** Largest accepted data, after decompression. @default 1048576 */
  readonly maxBytes?: number;
  /** Deliveries before a failing message is dead-lettered. @default 5 */
  readonly maxAttempts?: number;
  /** Redelivery delays. @default { initialMs: 200, maxMs: 30_000, factor: 2, jitter: 'full' } */
  readonly backoff?: BackoffOptions;
  /**
   * Errors for which this returns `false` are dead-lettered at once. @default isRetryable (the rule of the
   * `retry` behavior: validation, authorization and other permanent failures are dead-lettered at once)
   */
  readonly isRetryable?: (error: unknown) => boolean;
  /** Makes redelivered messages have a single effect. */
  readonly inbox?: InboxGuard;
  /** Called after each message with its disposition (metrics, logs). Must not throw. */
  readonly onDisposition?: (disposition: Disposition, message: IncomingMessage) => void;
  /**
   * Pausing while a handler's dependency is down instead of spending the messages' attempts; `false` treats
   * such failures as any other (retry, then dead letter). @default {} (on, with the defaults)
   */
  readonly pause?: ConsumerPauseOptions | false;
}

/** Decodes, deduplicates and dispatches incoming messages; broker consumers apply the returned disposition. */
export interface MessageProcessor {
  readonly name: string;
  readonly maxAttempts: number;
  /**
   * Never throws: every outcome is a {@link Disposition}. While paused (see {@link ConsumerPauseOptions}) it holds
   * the message until the dependency is back; aborting `signal` (the consumer stops) ends the hold with `release`.
   */
  process(message: IncomingMessage, signal?: AbortSignal): Promise<Disposition>;
  /** Whether it is paused, since when, how often. */
  pauseState(): ProcessorPauseState;
  /**
   * Resolves at once when not paused, else once resumed (or `signal` aborts). Fetch loops await it so a paused
   * consumer stops taking messages from the broker.
   */
  whenResumed(signal?: AbortSignal): Promise<void>;
}

const txStorage = new AsyncLocalStorage<{ tx: unknown; cloudEvent: CloudEventAttributes }>();

/** Inside a consumer's handler: the inbox transaction the processed mark is written in, if any. */
export function consumerTransaction<TTx = unknown>(): TTx | undefined {
  return txStorage.getStore()?.tx as TTx | undefined;
}

/**
 * Inside the handling of a message a broker consumer received (its `handle` function and the mediator's event
 * handlers): the CloudEvents attributes the event came with, unprefixed (`id`, `source`, `type`, `subject`,
 * `time`, `datacontenttype`, extensions such as `traceparent` or a producer's own). `undefined` elsewhere.
 */
export function incomingCloudEvent(): CloudEventAttributes | undefined {
  return txStorage.getStore()?.cloudEvent;
}

/** An id or source as the inbox stores it: itself up to 255 chars, a SHA-256 digest beyond. */
function inboxKey(value: string): string {
  return value.length <= 255 ? value : `sha256:${createHash('sha256').update(value).digest('hex')}`;
}

const ACK_HANDLED: Disposition = Object.freeze({ action: 'ack', outcome: 'handled' });
const ACK_DUPLICATE: Disposition = Object.freeze({ action: 'ack', outcome: 'duplicate' });

/**
 * Creates the broker-neutral part of a consumer: envelope decoding and validation (malformed or unknown
 * messages are dead-lettered at once with the reason), optional inbox deduplication, dispatch inside the
 * producer's correlation and trace context, and the retry/dead-letter decision.
 */
export function createMessageProcessor(options: MessageProcessorOptions): MessageProcessor {
  const name = options.name;
  if (typeof name !== 'string' || name.length === 0 || name.length > 200) {
    throw new ConfigurationError('consumer name must be 1..200 chars');
  }
  if (options.mediator === undefined && options.handle === undefined) {
    throw new ConfigurationError(`consumer ${name}: give a mediator or a handle function`);
  }
  const maxAttempts = options.maxAttempts ?? 5;
  if (!Number.isInteger(maxAttempts) || maxAttempts < 1) {
    throw new ConfigurationError(`consumer ${name}: maxAttempts must be an integer >= 1`);
  }
  const backoff: BackoffOptions = options.backoff ?? { initialMs: 200, maxMs: 30_000 };
  const decoder: EnvelopeDecoder = createEnvelopeDecoder({
    ...(options.catalog !== undefined ? { catalog: options.catalog } : {}),
    ...(options.serializers !== undefined ? { serializers: options.serializers } : {}),
    ...(options.maxBytes !== undefined ? { maxBytes: options.maxBytes } : {}),
  });
  const { mediator, handle, inbox, onDisposition } = options;
  const isRetryable = options.isRetryable ?? defaultIsRetryable;
  if (typeof isRetryable !== 'function')
    throw new ConfigurationError(`consumer ${name}: isRetryable must be a function (error) => boolean`);

  const pause = createPause(name, options.pause);

  async function dispatch(
    event: AnyEvent,
    cloudEvent: CloudEventAttributes,
    tx: unknown,
    message: IncomingMessage,
  ): Promise<void> {
    const m = event.metadata;
    const run = async () => {
      if (handle !== undefined)
        await handle(event, { tx, cloudEvent, deliveryAttempt: message.deliveryAttempt, message });
      if (mediator !== undefined) await mediator.publish(event);
    };
    const scoped = () =>
      runWithContext(
        {
          correlationId: m.correlationId,
          causationId: m.requestId,
          requestId: m.requestId,
          ...(m.tenantId !== undefined ? { tenantId: m.tenantId } : {}),
          ...(m.requestedBy !== undefined ? { requestedBy: m.requestedBy } : {}),
          ...(m.traceparent !== undefined ? { traceparent: m.traceparent } : {}),
          ...(m.tracestate !== undefined ? { tracestate: m.tracestate } : {}),
          ...(m.baggage !== undefined ? { baggage: m.baggage } : {}),
        },
        run,
      );
    const traced = consumeChannel.hasSubscribers
      ? () =>
          consumeChannel.tracePromise(scoped, {
            messageType: event.type,
            messageId: cloudEvent.id as string,
            destination: message.source,
            consumer: name,
            deliveryAttempt: message.deliveryAttempt,
            correlationId: m.correlationId,
            traceparent: m.traceparent,
            tracestate: m.tracestate,
          })
      : scoped;
    await txStorage.run({ tx, cloudEvent }, traced);
  }

  function finish(d: Disposition, message: IncomingMessage): Disposition {
    if (consumeDispositionChannel.hasSubscribers) {
      const a = message.attributes;
      consumeDispositionChannel.publish({
        consumer: name,
        destination: message.source,
        messageType: typeof a?.type === 'string' ? a.type : undefined,
        messageId: typeof a?.id === 'string' ? a.id : undefined,
        deliveryAttempt: message.deliveryAttempt,
        action: d.action,
        outcome: d.action === 'ack' ? d.outcome : undefined,
      } satisfies ConsumeDispositionContext);
    }
    if (onDisposition !== undefined) {
      try {
        onDisposition(d, message);
      } catch {
        // observers must not change the outcome
      }
    }
    return d;
  }

  return {
    name,
    maxAttempts,
    async process(message, signal) {
      let event: AnyEvent;
      let attributes: CloudEventAttributes;
      try {
        ({ event, attributes } = await decoder.decodeMessage(message.attributes, message.data));
      } catch (error) {
        const problem = error instanceof EnvelopeError ? ` (${error.problem})` : '';
        return finish(
          { action: 'dead-letter', reason: `undecodable: ${errorText(error)}${problem}`, error },
          message,
        );
      }
      for (;;) {
        let probe = false;
        if (pause?.paused) {
          const turn = await pause.turn(signal);
          if (turn === 'abort') return finish({ action: 'release', error: pause.lastError }, message);
          probe = turn === 'probe';
        }
        try {
          if (inbox !== undefined) {
            // CloudEvents identity: source + id (two producers may use the same id)
            const ran = await inbox.once(
              inboxKey(attributes.id as string),
              name,
              (tx) => dispatch(event, attributes, tx, message),
              inboxKey(attributes.source as string),
            );
            pause?.answered(probe);
            return finish(ran ? ACK_HANDLED : ACK_DUPLICATE, message);
          }
          await dispatch(event, attributes, undefined, message);
          pause?.answered(probe);
          return finish(ACK_HANDLED, message);
        } catch (error) {
          if (pause?.isUnavailable(error)) {
            pause.down(error, probe); // held: no attempt spent; wait for the next probe or the resume
            continue;
          }
          pause?.answered(probe);
          if (!isRetryable(error)) {
            return finish(
              { action: 'dead-letter', reason: `not retryable: ${errorText(error)}`, error },
              message,
            );
          }
          const attempt = Math.max(1, message.deliveryAttempt | 0);
          if (attempt >= maxAttempts) {
            return finish(
              { action: 'dead-letter', reason: `failed ${attempt} times: ${errorText(error)}`, error },
              message,
            );
          }
          return finish({ action: 'retry', delayMs: backoffDelay(attempt, backoff), error }, message);
        }
      }
    },
    pauseState() {
      return pause === undefined
        ? NOT_PAUSED
        : { paused: pause.paused, pausedSince: pause.since, pauses: pause.count };
    },
    whenResumed(signal) {
      return pause === undefined || !pause.paused ? Promise.resolve() : pause.resumed(signal);
    },
  };
}

const NOT_PAUSED: ProcessorPauseState = Object.freeze({ paused: false, pausedSince: undefined, pauses: 0 });

/** The pause machinery of one processor: one probe at a time, everyone else waits for the next change. */
interface Pause {
  readonly paused: boolean;
  readonly since: number | undefined;
  readonly count: number;
  readonly lastError: unknown;
  isUnavailable(error: unknown): boolean;
  /** A held or arriving message waits: `go` (resumed), `probe` (its turn to try), `abort` (signal). */
  turn(signal: AbortSignal | undefined): Promise<'go' | 'probe' | 'abort'>;
  /** A handler failed because the dependency is down. */
  down(error: unknown, probe: boolean): void;
  /** A handler got an answer (success, or a failure of the message's own): resume. */
  answered(probe: boolean): void;
  resumed(signal: AbortSignal | undefined): Promise<void>;
}

function createPause(name: string, options: ConsumerPauseOptions | false | undefined): Pause | undefined {
  if (options === false) return undefined;
  if (options !== undefined && (options === null || typeof options !== 'object')) {
    throw new ConfigurationError(`consumer ${name}: pause must be an options object or false`);
  }
  const o = options ?? {};
  const probeIntervalMs = o.probeIntervalMs ?? 200;
  if (!Number.isFinite(probeIntervalMs) || probeIntervalMs < 1) {
    throw new ConfigurationError(`consumer ${name}: pause.probeIntervalMs must be >= 1`);
  }
  const maxProbeIntervalMs = o.maxProbeIntervalMs ?? Math.max(1000, probeIntervalMs);
  if (!Number.isFinite(maxProbeIntervalMs) || maxProbeIntervalMs < probeIntervalMs) {
    throw new ConfigurationError(`consumer ${name}: pause.maxProbeIntervalMs must be >= probeIntervalMs`);
  }
  const test = o.isUnavailable ?? isUnavailableError;
  if (typeof test !== 'function') {
    throw new ConfigurationError(`consumer ${name}: pause.isUnavailable must be a function`);
  }
  let paused = false;
  let since: number | undefined;
  let count = 0;
  let failedProbes = 0;
  let nextProbeAt = 0;
  let probing = false;
  let lastError: unknown;
  let changed: { promise: Promise<void>; resolve: () => void } | undefined;

  const signalChange = () => {
    const c = changed;
    changed = undefined;
    c?.resolve();
  };
  const nextChange = () => {
    if (changed === undefined) {
      let resolve!: () => void;
      const promise = new Promise<void>((r) => {
        resolve = r;
      });
      changed = { promise, resolve };
    }
    return changed.promise;
  };
  /** Resolves `true` after `ms`, or when the state changes; `false` if `signal` aborts first. */
  const wait = (ms: number | undefined, signal: AbortSignal | undefined) =>
    new Promise<boolean>((resolve) => {
      if (signal?.aborted) {
        resolve(false);
        return;
      }
      let timer: ReturnType<typeof setTimeout> | undefined;
      const onAbort = () => done(false);
      const done = (ok: boolean) => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        resolve(ok);
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      if (ms !== undefined) timer = setTimeout(() => done(true), Math.max(0, ms));
      void nextChange().then(() => done(true));
    });

  const pause: Pause = {
    get paused() {
      return paused;
    },
    get since() {
      return since;
    },
    get count() {
      return count;
    },
    get lastError() {
      return lastError;
    },
    isUnavailable(error) {
      try {
        return test(error) === true;
      } catch {
        return false;
      }
    },
    async turn(signal) {
      while (paused) {
        if (!probing) {
          probing = true;
          let ok = true;
          while (paused && ok && Date.now() < nextProbeAt) ok = await wait(nextProbeAt - Date.now(), signal);
          if (!ok || !paused) {
            probing = false;
            signalChange(); // another waiter may take the probe
            if (!ok) return 'abort';
            return 'go';
          }
          return 'probe';
        }
        if (!(await wait(undefined, signal))) return 'abort';
      }
      return 'go';
    },
    down(error, probe) {
      lastError = error;
      if (probe) probing = false;
      const t = Date.now();
      if (!paused) {
        paused = true;
        since = t;
        count++;
        failedProbes = 0;
      } else if (probe) failedProbes++;
      else if (probing) return; // a message that was already running: the probe in progress decides
      nextProbeAt = t + Math.min(maxProbeIntervalMs, probeIntervalMs * 2 ** Math.min(failedProbes, 30));
      signalChange();
    },
    answered(probe) {
      if (probe) probing = false;
      if (!paused) return;
      paused = false;
      since = undefined;
      failedProbes = 0;
      signalChange();
    },
    async resumed(signal) {
      while (paused) if (!(await wait(undefined, signal))) return;
    },
  };
  return pause;
}

/**
 * Runs tasks with a global concurrency limit while keeping tasks that share a key strictly sequential, in
 * submission order. Used by consumers to bound in-flight handlers and keep per-key order.
 */
export interface KeyedLimiter {
  /** Queues `task`; the promise settles when it has run (it never runs before earlier tasks of its key). */
  run(key: string | null | undefined, task: () => Promise<void>): Promise<void>;
  /** In-flight plus queued tasks. */
  readonly size: number;
  /** Resolves when nothing is running or queued. */
  drain(): Promise<void>;
  /** Resolves once fewer than `n` tasks are running or queued (backpressure for fetch loops). */
  whenBelow(n: number): Promise<void>;
}

/** Creates a {@link KeyedLimiter}. */
export function createKeyedLimiter(concurrency: number): KeyedLimiter {
  if (!Number.isInteger(concurrency) || concurrency < 1) {
    throw new ConfigurationError('concurrency must be an integer >= 1');
  }
  let active = 0;
  let size = 0;
  const waiting: Array<() => void> = [];
  const tails = new Map<string, Promise<void>>();
  let idle: Array<() => void> = [];
  let below: Array<{ readonly n: number; readonly resolve: () => void }> = [];

  const acquire = (): Promise<void> | undefined => {
    if (active < concurrency) {
      active++;
      return undefined;
    }
    return new Promise<void>((resolve) => waiting.push(resolve));
  };
  const release = () => {
    const next = waiting.shift();
    if (next !== undefined) next();
    else active--;
  };
  const done = () => {
    size--;
    if (below.length > 0) {
      const keep: typeof below = [];
      for (const w of below) {
        if (size < w.n) w.resolve();
        else keep.push(w);
      }
      below = keep;
    }
    if (size === 0) {
      const w = idle;
      idle = [];
      for (const r of w) r();
    }
  };

  return {
    run(key, task) {
      size++;
      const previous = key == null ? undefined : tails.get(key);
      const start = async () => {
        if (previous !== undefined) await previous;
        const wait = acquire();
        if (wait !== undefined) await wait;
        try {
          await task();
        } finally {
          release();
        }
      };
      const p = start().finally(done);
      if (key != null) {
        const tail = p.catch(() => undefined);
        tails.set(key, tail);
        void tail.then(() => {
          if (tails.get(key) === tail) tails.delete(key);
        });
      }
      return p;
    },
    get size() {
      return size;
    },
    drain() {
      if (size === 0) return Promise.resolve();
      return new Promise<void>((resolve) => idle.push(resolve));
    },
    whenBelow(n) {
      if (size < n) return Promise.resolve();
      return new Promise<void>((resolve) => below.push({ n, resolve }));
    },
  };
}
