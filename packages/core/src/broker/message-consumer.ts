import type { Heartbeat } from '../shared/heartbeat.ts';

/**
 * What every consumer's `health()` reports, with the same meaning in each broker package. Counters start at 0
 * when the consumer is created.
 */
export interface MessageConsumerHealth {
  /** Between a successful `start()` and `stop()`. */
  readonly running: boolean;
  /** Connected to the broker and consuming right now (`false` while reconnecting). */
  readonly connected: boolean;
  /** Messages received and not yet acknowledged, retried or dead-lettered (running, queued or waiting). */
  readonly inFlight: number;
  /** Messages handled and acknowledged. */
  readonly handled: number;
  /** Redeliveries acknowledged without running the handler again (the inbox found them processed). */
  readonly duplicates: number;
  /** Failed attempts sent back for a later redelivery. */
  readonly retried: number;
  /** Messages moved to the dead-letter destination (malformed, unknown, or out of attempts). */
  readonly deadLettered: number;
  /** Times the consumer re-established its connection, channel, subscription or fetch loop after a failure. */
  readonly reconnects: number;
  /** The last failure of the consumer itself (connection, dead-letter publish), `undefined` if none yet. */
  readonly lastError: string | undefined;
  /**
   * A handler's dependency is down (its failure said so, e.g. a connection refused): the consumer stopped
   * fetching, holds its messages unacknowledged without spending their attempts, and probes with one of them.
   */
  readonly paused: boolean;
  /** Epoch ms since which it has been paused, `undefined` when not paused. */
  readonly pausedSince: number | undefined;
  /** Times it paused since it was created. */
  readonly pauses: number;
  /**
   * The fetch loop's heartbeat, for consumers that pull in a loop (a beat per fetch); absent for push
   * consumers, whose liveness is their connection.
   */
  readonly heartbeat?: Heartbeat;
}

/**
 * A broker consumer feeding a message processor (`createMessageProcessor`): it acknowledges a message only
 * after its handler succeeded, redelivers failed ones after the processor's backoff, dead-letters the ones the
 * processor gives up on with the reason, keeps messages of one key in order, reconnects by itself, pauses while
 * a handler's dependency is down (see `ConsumerPauseOptions`) and stops gracefully. Every broker package's
 * consumer implements it.
 */
export interface MessageConsumer extends AsyncDisposable {
  /** Connects, declares what the consumer needs and starts consuming; rejects on a configuration it cannot use. */
  start(): Promise<void>;
  /**
   * Stops taking messages, lets running handlers finish (up to the package's stop timeout) and acknowledges
   * them; messages not started go back to the broker. Resolves once closed.
   */
  stop(): Promise<void>;
  health(): MessageConsumerHealth;
}
