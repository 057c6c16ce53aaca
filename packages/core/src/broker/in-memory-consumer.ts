import { ConfigurationError } from '../errors/cqrs-error.ts';
import { errorText } from '../shared/error-text.ts';
import {
  type BroadcastConsumer,
  type BroadcastConsumerOptions,
  createBroadcastConsumer,
} from './broadcast-consumer.ts';
import type { InMemoryBroker } from './in-memory-broker.ts';
import type { MessageConsumer, MessageConsumerHealth } from './message-consumer.ts';
import type { IncomingMessage, MessageProcessorOptions } from './message-processor.ts';
import { createKeyedLimiter, createMessageProcessor } from './message-processor.ts';
import type { OutboxMessage } from './message-publisher.ts';

/** Options of {@link createInMemoryConsumer}: where it reads, and the message processor's options. */
export interface InMemoryConsumerOptions extends Omit<MessageProcessorOptions, 'name'> {
  /** The broker it subscribes to (at creation: messages published before `start()` wait in its queue). */
  readonly broker: InMemoryBroker;
  /** Topics to consume; `*` for all. */
  readonly topics: readonly string[];
  /** The consumer's name: the inbox consumer key. @default 'in-memory' */
  readonly name?: string;
  /** Handlers running at once; messages of one key run one after another. @default 16 */
  readonly concurrency?: number;
  /** `stop()` waits this long for running handlers. @default 30000 */
  readonly stopTimeoutMs?: number;
}

/** A message the consumer gave up on, with the processor's reason. */
export interface InMemoryDeadLetter {
  readonly message: OutboxMessage;
  readonly reason: string;
  readonly attempts: number;
}

/** The in-memory {@link MessageConsumer}, with its dead letters and queue in view. */
export interface InMemoryConsumer extends MessageConsumer {
  /** Dead letters so far, oldest first. */
  deadLetters(): readonly InMemoryDeadLetter[];
  /** Messages not yet acknowledged or dead-lettered: queued, running or waiting for a retry. */
  readonly backlog: number;
}

interface Entry {
  readonly message: OutboxMessage;
  readonly attempt: number;
}

/**
 * A queue consumer over the in-memory broker, the test double of the broker packages' consumers: a publish
 * succeeds once the message is queued; the queue is worked through the message processor with per-key order;
 * a retry comes back after the processor's backoff (behind the later messages of its key), a dead letter is
 * kept with its reason, and `stop()` lets running handlers finish and keeps what was not started.
 */
export function createInMemoryConsumer(options: InMemoryConsumerOptions): InMemoryConsumer {
  const { broker, topics } = options;
  if (broker === null || typeof broker?.subscribe !== 'function') {
    throw new ConfigurationError('in-memory consumer: broker must be an in-memory broker');
  }
  if (
    !Array.isArray(topics) ||
    topics.length === 0 ||
    topics.some((t) => typeof t !== 'string' || t === '')
  ) {
    throw new ConfigurationError('in-memory consumer: topics must list 1 or more topic names');
  }
  const concurrency = options.concurrency ?? 16;
  const stopTimeoutMs = options.stopTimeoutMs ?? 30_000;
  if (!Number.isInteger(stopTimeoutMs) || stopTimeoutMs < 0) {
    throw new ConfigurationError('in-memory consumer: stopTimeoutMs must be an integer >= 0');
  }
  const processor = createMessageProcessor({ ...options, name: options.name ?? 'in-memory' });
  const limiter = createKeyedLimiter(concurrency);
  const queue: Entry[] = [];
  /** Given back by a stop, in the order they were taken: they go first on the next start. */
  const returned: Entry[] = [];
  const retries = new Set<ReturnType<typeof setTimeout>>();
  const dead: InMemoryDeadLetter[] = [];
  const counts = { handled: 0, duplicates: 0, retried: 0, deadLettered: 0 };
  let running = false;
  let lastError: string | undefined;
  let stopSignal = new AbortController();

  const enqueue = (entry: Entry) => {
    queue.push(entry);
    pump();
  };
  // Copied field by field: spreading a delivered message would decode its `event` (and throw on bad bytes).
  const unsubscribe = topics.map((topic) =>
    broker.subscribe(topic, (m) =>
      enqueue({
        message: {
          id: m.id,
          type: m.type,
          topic: m.topic,
          key: m.key,
          headers: m.headers,
          body: m.body,
          attempts: m.attempts,
        },
        attempt: 1,
      }),
    ),
  );

  async function handle(entry: Entry): Promise<void> {
    if (!running) {
      returned.push(entry); // taken but not started before stop: back to the queue on start
      return;
    }
    const { message } = entry;
    const incoming: IncomingMessage = {
      attributes: message.headers,
      data: message.body,
      deliveryAttempt: entry.attempt,
      source: message.topic,
    };
    const d = await processor.process(incoming, stopSignal.signal);
    if (d.action === 'release') {
      returned.push(entry); // held while paused when the consumer stopped: kept for the next start
      return;
    }
    if (d.action === 'ack') {
      if (d.outcome === 'duplicate') counts.duplicates++;
      else counts.handled++;
    } else if (d.action === 'retry') {
      counts.retried++;
      const timer = setTimeout(() => {
        retries.delete(timer);
        enqueue({ message, attempt: entry.attempt + 1 });
      }, d.delayMs);
      retries.add(timer);
    } else {
      counts.deadLettered++;
      dead.push({ message, reason: d.reason, attempts: entry.attempt });
    }
  }

  function pump(): void {
    while (running && queue.length > 0) {
      const entry = queue.shift()!;
      void limiter
        .run(entry.message.key, () => handle(entry))
        .catch((error: unknown) => {
          lastError = errorText(error);
        });
    }
  }

  const health = (): MessageConsumerHealth => ({
    running,
    connected: running,
    inFlight: limiter.size,
    ...counts,
    reconnects: 0,
    lastError,
    ...processor.pauseState(),
  });

  const consumer: InMemoryConsumer = {
    async start() {
      running = true;
      if (stopSignal.signal.aborted) stopSignal = new AbortController();
      if (returned.length > 0) queue.unshift(...returned.splice(0));
      pump();
    },
    async stop() {
      running = false;
      stopSignal.abort();
      let timer: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([
        limiter.drain(),
        new Promise<void>((resolve) => {
          timer = setTimeout(resolve, stopTimeoutMs);
        }),
      ]);
      clearTimeout(timer);
    },
    health,
    deadLetters: () => [...dead],
    get backlog() {
      return queue.length + returned.length + limiter.size + retries.size;
    },
    async [Symbol.asyncDispose]() {
      await consumer.stop();
      for (const off of unsubscribe) off();
      for (const t of retries) clearTimeout(t);
    },
  };
  return consumer;
}

/** Options of {@link createInMemoryBroadcastConsumer}. */
export interface InMemoryBroadcastConsumerOptions extends BroadcastConsumerOptions {
  readonly broker: InMemoryBroker;
  /** Topics to read; `*` for all. */
  readonly topics: readonly string[];
}

/**
 * The in-memory double of the broker packages' broadcast consumers (`BroadcastConsumer` of `@cqrs-ts/core/spi`):
 * each instance subscribes to the broker on `start()` and unsubscribes on `stop()`, and handles what it receives
 * one at a time in publish order; failures are retried in process, then dropped.
 * @throws ConfigurationError for malformed options
 */
export function createInMemoryBroadcastConsumer(
  options: InMemoryBroadcastConsumerOptions,
): BroadcastConsumer {
  const { broker, topics } = options ?? ({} as InMemoryBroadcastConsumerOptions);
  if (broker === null || typeof broker?.subscribe !== 'function')
    throw new ConfigurationError('in-memory broadcast consumer: broker must be an in-memory broker');
  if (!Array.isArray(topics) || topics.length === 0 || topics.some((t) => typeof t !== 'string' || t === ''))
    throw new ConfigurationError('in-memory broadcast consumer: topics must list 1 or more topic names');
  return createBroadcastConsumer({
    ...options,
    what: 'in-memory broadcast consumer',
    source: {
      async open({ deliver }) {
        let chain = Promise.resolve();
        const unsubscribe = topics.map((topic) =>
          broker.subscribe(topic, (m) => {
            const incoming: IncomingMessage = {
              attributes: m.headers,
              data: m.body,
              deliveryAttempt: 1,
              source: m.topic,
            };
            chain = chain.then(() => deliver(incoming));
          }),
        );
        let open = true;
        return {
          connected: () => open,
          async close() {
            open = false;
            for (const u of unsubscribe) u();
            await chain;
          },
        };
      },
    },
  });
}
