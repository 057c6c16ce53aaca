import { randomBytes } from 'node:crypto';
import { ConfigurationError } from '../errors/cqrs-error.ts';
import { sleep } from '../shared/abort.ts';
import { errorText } from '../shared/error-text.ts';
import { type Logger, noopLogger } from '../shared/logger.ts';
import type { MessageConsumer, MessageConsumerHealth } from './message-consumer.ts';
import {
  createMessageProcessor,
  type IncomingMessage,
  type MessageProcessor,
  type MessageProcessorOptions,
} from './message-processor.ts';

/**
 * Options every broker package's broadcast consumer takes besides its connection and what it reads: the
 * processor's options (without an inbox: every instance handles every event) and a name.
 */
export interface BroadcastConsumerOptions extends Omit<MessageProcessorOptions, 'name' | 'inbox'> {
  /**
   * Prefix of this instance's name (its ephemeral JetStream consumer, exclusive queue or Kafka group):
   * `<name>-<random>`, so two instances never share (and so never compete for) one. 1..100 chars.
   */
  readonly name: string;
  /** `stop()` waits this long for the running handler. @default 30000 */
  readonly stopTimeoutMs?: number;
  readonly logger?: Logger;
}

/**
 * A non-competing consumer: every running instance receives every message published after its `start()`
 * resolved (or from a start position, where the broker has one), one at a time in the broker's order. Nothing
 * is acknowledged to the broker and nothing is dead-lettered there: a failed message is retried in process
 * with the processor's backoff up to `maxAttempts`, then dropped, logged and counted in `deadLettered`.
 * What `start()` creates on the broker (an ephemeral consumer, an exclusive queue, a group) is removed by
 * `stop()`. Use it for what each process must see: cache invalidation, live-query feeds.
 */
export interface BroadcastConsumer extends MessageConsumer {
  /** This instance's name, `<name>-<random>`: the name of what it creates on the broker. */
  readonly instance: string;
  readonly processor: MessageProcessor;
}

/** What a broker package's subscription reports to {@link createBroadcastConsumer}. */
export interface BroadcastSubscription {
  /** Connected and subscribed right now. */
  connected(): boolean;
  /** Unsubscribes and removes what `open` created on the broker; closes the connections it opened. */
  close(): Promise<void>;
}

/** What {@link BroadcastSource.open} receives. */
export interface BroadcastOpenContext {
  /** The instance name (see {@link BroadcastConsumer.instance}). */
  readonly instance: string;
  /** Hand each message to it in the broker's order, awaiting it before the next; it never rejects. */
  deliver(message: IncomingMessage): Promise<void>;
  /** Report a failure of the subscription itself (a lost connection, a failed read). */
  failed(error: unknown): void;
  /** Report that the subscription was re-established after a failure. */
  reconnected(): void;
}

/** How a broker package subscribes without competing (see {@link createBroadcastConsumer}). */
export interface BroadcastSource {
  /** Subscribes; resolves once messages published from now on will be delivered. @throws on failure */
  open(context: BroadcastOpenContext): Promise<BroadcastSubscription>;
}

const MAX_NAME = 100;

/**
 * The broker-neutral part of a broadcast consumer: name, lifecycle, in-process retries, health. A broker
 * package gives the subscription (`source`); see {@link BroadcastConsumer} for the semantics.
 * @throws ConfigurationError for malformed options (an `inbox` among them)
 */
export function createBroadcastConsumer(
  options: BroadcastConsumerOptions & { readonly source: BroadcastSource; readonly what: string },
): BroadcastConsumer {
  const what = options?.what ?? 'broadcast consumer';
  if (options === null || typeof options !== 'object')
    throw new ConfigurationError(`${what}: options required`);
  const name = options.name;
  if (typeof name !== 'string' || name.length === 0 || name.length > MAX_NAME)
    throw new ConfigurationError(`${what}: name must be 1..${MAX_NAME} chars`);
  if ((options as { inbox?: unknown }).inbox !== undefined)
    throw new ConfigurationError(
      `${what}: a broadcast consumer takes no inbox (every instance handles every message)`,
    );
  if (typeof options.source?.open !== 'function')
    throw new ConfigurationError(`${what}: source must be a broadcast source`);
  const stopTimeoutMs = options.stopTimeoutMs ?? 30_000;
  if (!(Number.isSafeInteger(stopTimeoutMs) && stopTimeoutMs >= 0))
    throw new ConfigurationError(`${what}: stopTimeoutMs must be an integer >= 0`);
  const instance = `${name}-${randomBytes(6).toString('hex')}`;
  const processor = createMessageProcessor({ ...options, name: instance });
  const logger = options.logger ?? noopLogger;
  const stats = { handled: 0, duplicates: 0, retried: 0, deadLettered: 0, reconnects: 0 };
  let lastError: string | undefined;
  let running = false;
  let inFlight = 0;
  let current: Promise<void> = Promise.resolve();
  let subscription: BroadcastSubscription | undefined;
  let stopping = new AbortController();

  async function process(message: IncomingMessage, signal: AbortSignal): Promise<void> {
    for (let attempt = message.deliveryAttempt; running; attempt++) {
      const d = await processor.process({ ...message, deliveryAttempt: attempt }, signal);
      switch (d.action) {
        case 'ack':
          if (d.outcome === 'duplicate') stats.duplicates++;
          else stats.handled++;
          return;
        case 'release':
          return;
        case 'retry':
          stats.retried++;
          try {
            await sleep(d.delayMs, signal);
          } catch {
            return; // stopped
          }
          continue;
        case 'dead-letter':
          stats.deadLettered++;
          logger.warn(
            { consumer: instance, source: message.source, reason: d.reason },
            'broadcast message dropped',
          );
          return;
      }
    }
  }

  function deliver(message: IncomingMessage): Promise<void> {
    if (!running) return Promise.resolve();
    inFlight++;
    const run = process(message, stopping.signal)
      .catch((error: unknown) => {
        lastError = errorText(error);
      })
      .finally(() => {
        inFlight--;
      });
    current = run;
    return run;
  }

  const consumer: BroadcastConsumer = {
    instance,
    processor,
    async start() {
      if (running) return;
      running = true;
      if (stopping.signal.aborted) stopping = new AbortController();
      try {
        subscription = await options.source.open({
          instance,
          deliver,
          failed(error) {
            lastError = errorText(error);
          },
          reconnected() {
            stats.reconnects++;
          },
        });
      } catch (error) {
        running = false;
        lastError = errorText(error);
        throw error;
      }
    },
    async stop() {
      if (!running) return;
      running = false;
      stopping.abort();
      let timer: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([
        current,
        new Promise<void>((resolve) => {
          timer = setTimeout(resolve, stopTimeoutMs);
        }),
      ]);
      clearTimeout(timer);
      const s = subscription;
      subscription = undefined;
      try {
        await s?.close();
      } catch (error) {
        lastError = errorText(error);
      }
    },
    health(): MessageConsumerHealth {
      return {
        running,
        connected: running && (subscription?.connected() ?? false),
        inFlight,
        ...stats,
        lastError,
        ...processor.pauseState(),
      };
    },
    [Symbol.asyncDispose]() {
      return consumer.stop();
    },
  };
  return consumer;
}
