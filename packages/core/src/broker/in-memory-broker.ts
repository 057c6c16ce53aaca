import type { AnyEvent } from '../messages/message.ts';
import type { PayloadSerializer } from './envelope.ts';
import { EnvelopeError, eventFromEnvelope, jsonPayloadSerializer } from './envelope.ts';
import type { MessagePublisher, OutboxMessage, PublishResult } from './message-publisher.ts';

/** A message as a subscriber receives it: the outbox message plus the event rebuilt from its envelope. */
export interface DeliveredMessage extends OutboxMessage {
  /**
   * The event (`{ kind, type, payload, metadata }`) rebuilt from the envelope on first read, not validated.
   * @throws EnvelopeError (`CQRS_ENVELOPE`) when the message is not a valid envelope.
   */
  readonly event: AnyEvent;
}

/** Handles one delivered message; a throw or rejection fails the publish of that message. */
export type BrokerHandler = (message: DeliveredMessage) => void | Promise<void>;

/** Options of {@link createInMemoryBroker}. */
export interface InMemoryBrokerOptions {
  /** How many recent deliveries `recent()` keeps (a ring buffer). @default 0 */
  readonly keepRecent?: number;
  /** Serializers (by `datacontenttype`) that rebuild `DeliveredMessage.event`; JSON is always known. */
  readonly serializers?: readonly PayloadSerializer[];
}

/** The in-memory broker: a {@link MessagePublisher} that delivers synchronously to in-process subscribers. */
export interface InMemoryBroker extends MessagePublisher {
  /** Subscribes to a topic (`*` for all); returns the unsubscribe function. */
  subscribe(topic: string, handler: BrokerHandler): () => void;
  /** Makes the next publishes fail while `predicate` returns true (fault injection); `undefined` clears it. */
  failWhen(predicate: ((message: OutboxMessage) => boolean) | undefined): void;
  /** The last `keepRecent` delivered messages, oldest first. */
  recent(): readonly DeliveredMessage[];
  /** Messages delivered so far. */
  readonly delivered: number;
}

/**
 * Creates an in-memory broker, the embedded default and test double. Delivery is in batch order, and after a
 * failure the later messages with the same key are not delivered, so it declares `preservesKeyOrder`.
 * Memory stays bounded: nothing is retained except the optional `keepRecent` ring buffer.
 */
export function createInMemoryBroker(options: InMemoryBrokerOptions = {}): InMemoryBroker {
  const subscribers = new Map<string, Set<BrokerHandler>>();
  const keep = options.keepRecent ?? 0;
  const ring: DeliveredMessage[] = [];
  let ringStart = 0;
  let delivered = 0;
  let failPredicate: ((message: OutboxMessage) => boolean) | undefined;
  const serializers = new Map<string, PayloadSerializer>([['application/json', jsonPayloadSerializer]]);
  for (const s of options.serializers ?? []) serializers.set(s.contentType, s);
  const serializerOf = (message: OutboxMessage): PayloadSerializer => {
    const contentType = (message.headers.datacontenttype ?? 'application/json').split(';')[0]!.trim();
    const s = serializers.get(contentType);
    if (s === undefined) {
      throw new EnvelopeError(
        `${message.type}: no serializer for content type ${JSON.stringify(contentType)}`,
      );
    }
    return s;
  };

  const skipped = (key: string): PublishResult => ({
    ok: false,
    error: new Error(`not delivered: an earlier message with key ${key} failed`),
  });

  async function deliver(message: OutboxMessage): Promise<void> {
    if (failPredicate?.(message)) throw new Error(`injected failure for ${message.id}`);
    const byTopic = subscribers.get(message.topic);
    const all = subscribers.get('*');
    if (byTopic === undefined && all === undefined && keep === 0) {
      // Nobody listens and nothing is kept: a sink, like a broker topic without consumers.
      delivered++;
      return;
    }
    const handlers = [...(byTopic ?? []), ...(all ?? [])];
    // The event is rebuilt when a subscriber reads it: a consumer that decodes by itself gets the raw bytes.
    let event: AnyEvent | undefined;
    const d: DeliveredMessage = {
      ...message,
      get event() {
        event ??= eventFromEnvelope(message.headers, message.body, serializerOf(message));
        return event;
      },
    };
    for (const h of handlers) await h(d);
    delivered++;
    if (keep > 0) {
      if (ring.length < keep) ring.push(d);
      else {
        ring[ringStart] = d;
        ringStart = (ringStart + 1) % keep;
      }
    }
  }

  return {
    capabilities: Object.freeze({ preservesKeyOrder: true }),
    async publish(batch) {
      const results: PublishResult[] = new Array(batch.length);
      let failedKeys: Set<string> | undefined;
      for (let i = 0; i < batch.length; i++) {
        const m = batch[i]!;
        if (m.key !== null && failedKeys?.has(m.key)) {
          results[i] = skipped(m.key);
          continue;
        }
        try {
          await deliver(m);
          results[i] = { ok: true };
        } catch (error) {
          results[i] = { ok: false, error };
          if (m.key !== null) {
            failedKeys ??= new Set();
            failedKeys.add(m.key);
          }
        }
      }
      return results;
    },
    subscribe(topic, handler) {
      let set = subscribers.get(topic);
      if (!set) {
        set = new Set();
        subscribers.set(topic, set);
      }
      set.add(handler);
      return () => {
        set.delete(handler);
        if (set.size === 0) subscribers.delete(topic);
      };
    },
    failWhen(predicate) {
      failPredicate = predicate;
    },
    recent() {
      return [...ring.slice(ringStart), ...ring.slice(0, ringStart)];
    },
    get delivered() {
      return delivered;
    },
  };
}
