import { AsyncLocalStorage } from 'node:async_hooks';
import { runWithContext } from '../context/ambient-context.ts';
import { ConfigurationError } from '../errors/cqrs-error.ts';
import { isRetryable as defaultIsRetryable } from '../errors/retryable.ts';
import type { InboxGuard } from '../inbox/inbox-guard.ts';
import type { AnyEvent } from '../messages/message.ts';
import type { MessageCatalog } from '../messages/message-catalog.ts';
import type { BackoffOptions } from '../shared/backoff.ts';
import { backoffDelay } from '../shared/backoff.ts';
import { errorText } from '../shared/error-text.ts';
import type { CloudEventAttributes, EnvelopeDecoder, PayloadSerializer } from './envelope.ts';
import { createEnvelopeDecoder } from './envelope.ts';

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
  | { readonly action: 'dead-letter'; readonly reason: string; readonly error: unknown };

/** What a custom `handle` function receives besides the event. */
export interface ConsumerHandlerContext {
  /** The inbox transaction when an inbox guard is configured. */
  readonly tx: unknown;
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
}

/** Decodes, deduplicates and dispatches incoming messages; broker consumers apply the returned disposition. */
export interface MessageProcessor {
  readonly name: string;
  readonly maxAttempts: number;
  /** Never throws: every outcome is a {@link Disposition}. */
  process(message: IncomingMessage): Promise<Disposition>;
}

const txStorage = new AsyncLocalStorage<{ tx: unknown }>();

/** Inside a consumer's handler: the inbox transaction the processed mark is written in, if any. */
export function consumerTransaction<TTx = unknown>(): TTx | undefined {
  return txStorage.getStore()?.tx as TTx | undefined;
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

  async function dispatch(event: AnyEvent, tx: unknown, message: IncomingMessage): Promise<void> {
    const m = event.metadata;
    const run = async () => {
      if (handle !== undefined)
        await handle(event, { tx, deliveryAttempt: message.deliveryAttempt, message });
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
          ...(message.attributes.tracestate !== undefined
            ? { tracestate: message.attributes.tracestate }
            : {}),
        },
        run,
      );
    if (tx === undefined) await scoped();
    else await txStorage.run({ tx }, scoped);
  }

  function finish(d: Disposition, message: IncomingMessage): Disposition {
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
    async process(message) {
      let event: AnyEvent;
      try {
        event = await decoder.decode(message.attributes, message.data);
      } catch (error) {
        return finish({ action: 'dead-letter', reason: `undecodable: ${errorText(error)}`, error }, message);
      }
      try {
        if (inbox !== undefined) {
          const ran = await inbox.once(event.metadata.requestId, name, (tx) => dispatch(event, tx, message));
          return finish(ran ? ACK_HANDLED : ACK_DUPLICATE, message);
        }
        await dispatch(event, undefined, message);
        return finish(ACK_HANDLED, message);
      } catch (error) {
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
    },
  };
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
