import type { OutboxMessage } from './outbox-record.ts';

/** Outcome of publishing one message of a batch. */
export type PublishResult =
  | { readonly ok: true }
  | {
      readonly ok: false;
      readonly error: unknown;
      /** `false`: retrying cannot help, the record goes straight to `dead`. Default `true`. */
      readonly retryable?: boolean;
    };

/** What a publisher guarantees; the relay reads these flags and never the publisher's name. */
export interface PublisherCapabilities {
  /**
   * Within one `publish` call, messages sharing a key are delivered in array order, and after one fails the
   * later ones with that key are not delivered (reported as failed). When `false` the relay sends at most one
   * message per key per call.
   */
  readonly preservesKeyOrder: boolean;
  /** Largest batch the publisher accepts in one call; the relay splits bigger ones. */
  readonly maxBatchSize?: number;
}

/**
 * Port of a broker producer. `publish` returns one result per message, in order, so a partial failure is
 * expressible; a thrown error fails the whole batch.
 */
export interface MessagePublisher {
  readonly capabilities: PublisherCapabilities;
  publish(
    batch: readonly OutboxMessage[],
    options?: { readonly signal?: AbortSignal },
  ): Promise<readonly PublishResult[]>;
}
