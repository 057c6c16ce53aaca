/** What a relay hands to a {@link MessagePublisher}: one event, decoded to uncompressed JSON bytes. */
export interface OutboxMessage {
  readonly id: string;
  readonly type: string;
  readonly topic: string;
  readonly key: string | null;
  /** CloudEvents context attributes, unprefixed; publishers map them to their binding's headers. */
  readonly headers: Readonly<Record<string, string>>;
  /** The CloudEvents data: the serialized payload (per `headers.datacontenttype`), uncompressed. */
  readonly body: Uint8Array;
  /** Failed attempts before this one. */
  readonly attempts: number;
}

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
  /**
   * Optional: calls `listener` whenever the destination may be reachable again (the client re-established its
   * connection), so a relay that paused publishing probes at once instead of at its next probe time. Returns a
   * function that removes the listener.
   */
  onAvailable?(listener: () => void): () => void;
}
