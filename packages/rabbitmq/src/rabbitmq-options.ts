import type { ConfirmChannel, Options } from 'amqplib';

/**
 * The part of an amqplib connection (`ChannelModel`) the adapters use. amqplib's `connect()` result
 * satisfies it; so does any object with the same methods.
 */
export interface AmqpConnectionLike {
  createConfirmChannel(): Promise<ConfirmChannel>;
  close(): Promise<void>;
  on(event: 'close' | 'error', listener: (error?: Error) => void): unknown;
  removeListener(event: 'close' | 'error', listener: (error?: Error) => void): unknown;
}

/**
 * Where the adapters get their AMQP connection. Give exactly one of `url` or `connection`.
 *
 * - `url`: the adapter connects itself, owns the connection (closes it on `close()`/`stop()`) and reconnects
 *   with backoff after the connection or broker goes away.
 * - `connection` as a function: called for every (re)connection; the adapter owns and closes what it returns.
 * - `connection` as an object: you own it; the adapter opens its own channel on it, re-opens the channel when
 *   only the channel closed, and never closes the connection. Once it is closed nothing can be re-opened.
 */
export interface RabbitConnectionOptions {
  /** An AMQP URL (`amqp://guest:guest@127.0.0.1:5672`) or amqplib connect options. */
  readonly url?: string | Options.Connect;
  /** An amqplib connection, or a factory of connections. */
  readonly connection?: AmqpConnectionLike | (() => Promise<AmqpConnectionLike>);
  /** Shown in the RabbitMQ management UI as the connection name (connections the adapter opens). */
  readonly connectionName?: string;
  /** Backoff between reconnection attempts. @default { initialMs: 100, maxMs: 5000 } */
  readonly reconnect?: { readonly initialMs?: number; readonly maxMs?: number };
}

/** The CloudEvents AMQP binding prefix of application properties (headers). */
export const CLOUDEVENTS_AMQP_PREFIX = 'cloudEvents:';
