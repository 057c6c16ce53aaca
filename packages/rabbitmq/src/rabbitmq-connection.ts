import { BrokerError, ConfigurationError } from '@cqrs-ts/core';
import { errorText } from '@cqrs-ts/core/spi';
import type { ConfirmChannel } from 'amqplib';
import { connect } from 'amqplib';
import { rabbitError } from './rabbitmq-errors.ts';
import type { AmqpConnectionLike, RabbitConnectionOptions } from './rabbitmq-options.ts';

/** One confirm channel, opened on demand and re-opened after it or its connection closed. @internal */
export interface ChannelSource {
  /** The open channel, or a new one. @throws BrokerError (`connection`), fast while backing off. */
  channel(): Promise<ConfirmChannel>;
  /** The open channel, if any. */
  readonly current: ConfirmChannel | undefined;
  /** Called with every channel that closes (after the source forgot it). */
  onClose(listener: (channel: ConfirmChannel, error: Error | undefined) => void): void;
  /** Delay before the next connection attempt may be made (0 when connected or never failed). */
  readonly retryInMs: number;
  /** False once a connection the adapter was given has closed: nothing can open a channel again. */
  readonly reopenable: boolean;
  close(): Promise<void>;
}

const noop = () => {};

/** Validates the connection options at construction. @internal */
export function checkConnectionOptions(what: string, options: RabbitConnectionOptions): void {
  const hasUrl = options.url !== undefined;
  const hasConnection = options.connection !== undefined;
  if (hasUrl === hasConnection) {
    throw new ConfigurationError(`${what}: give exactly one of url or connection`);
  }
  if (
    hasUrl &&
    typeof options.url !== 'string' &&
    (typeof options.url !== 'object' || options.url === null)
  ) {
    throw new ConfigurationError(`${what}: url must be an AMQP URL string or connect options`);
  }
  if (
    hasConnection &&
    typeof options.connection !== 'function' &&
    typeof (options.connection as AmqpConnectionLike).createConfirmChannel !== 'function'
  ) {
    throw new ConfigurationError(`${what}: connection must be an amqplib connection or a factory of one`);
  }
}

/**
 * Creates a {@link ChannelSource}. Connection failures back off exponentially (`reconnect` option); while
 * backing off `channel()` fails at once with the last error instead of hammering the broker. @internal
 */
export function createChannelSource(
  options: RabbitConnectionOptions,
  setup?: (channel: ConfirmChannel) => Promise<void>,
): ChannelSource {
  const initialMs = options.reconnect?.initialMs ?? 100;
  const maxMs = options.reconnect?.maxMs ?? 5000;
  const given = options.connection;
  const owned = typeof given !== 'object';
  let conn: AmqpConnectionLike | undefined = owned ? undefined : given;
  let connClosed = false;
  let ch: ConfirmChannel | undefined;
  let opening: Promise<ConfirmChannel> | undefined;
  let failures = 0;
  let retryAt = 0;
  let lastError: BrokerError | undefined;
  let closed = false;
  const closeListeners: Array<(channel: ConfirmChannel, error: Error | undefined) => void> = [];

  async function openConnection(): Promise<AmqpConnectionLike> {
    if (!owned) {
      if (connClosed) throw rabbitError('connection', 'the connection given to the adapter is closed');
      return conn!;
    }
    const c =
      typeof given === 'function'
        ? await given()
        : ((await connect(options.url!, {
            clientProperties: { connection_name: options.connectionName ?? 'cqrs-ts' },
          })) as unknown as AmqpConnectionLike);
    return c;
  }

  function watchConnection(c: AmqpConnectionLike): void {
    c.on('error', noop);
    const onClose = () => {
      c.removeListener('close', onClose);
      if (conn === c) {
        if (owned) conn = undefined;
        else connClosed = true;
      }
    };
    c.on('close', onClose);
  }

  async function open(): Promise<ConfirmChannel> {
    let c = conn;
    if (c === undefined || (owned && connClosed)) {
      c = await openConnection();
      conn = c;
      connClosed = false;
      watchConnection(c);
    }
    let channel: ConfirmChannel;
    try {
      channel = await c.createConfirmChannel();
    } catch (error) {
      // A connection that cannot open channels is useless: drop it so the next attempt reconnects.
      if (owned && conn === c) {
        conn = undefined;
        c.close().catch(noop);
      }
      throw error;
    }
    let channelError: Error | undefined;
    channel.on('error', (error: Error) => {
      channelError = error;
    });
    channel.once('close', () => {
      if (ch === channel) ch = undefined;
      for (const l of closeListeners) l(channel, channelError);
    });
    if (setup !== undefined) await setup(channel);
    if (closed) {
      await channel.close().catch(noop);
      throw rabbitError('closed', 'closed');
    }
    return channel;
  }

  const source: ChannelSource = {
    channel() {
      if (ch !== undefined) return Promise.resolve(ch);
      if (closed) return Promise.reject(rabbitError('closed', 'closed'));
      if (opening !== undefined) return opening;
      if (lastError !== undefined && Date.now() < retryAt) return Promise.reject(lastError);
      opening = open().then(
        (channel) => {
          ch = channel;
          failures = 0;
          lastError = undefined;
          opening = undefined;
          return channel;
        },
        (error: unknown) => {
          opening = undefined;
          failures++;
          retryAt = Date.now() + Math.min(maxMs, initialMs * 2 ** (failures - 1));
          lastError =
            error instanceof BrokerError
              ? error
              : rabbitError('connection', `cannot open a channel: ${errorText(error)}`, {
                  cause: error,
                });
          throw lastError;
        },
      );
      return opening;
    },
    get current() {
      return ch;
    },
    onClose(listener) {
      closeListeners.push(listener);
    },
    get retryInMs() {
      return lastError === undefined ? 0 : Math.max(0, retryAt - Date.now());
    },
    get reopenable() {
      return !closed && (owned || !connClosed);
    },
    async close() {
      closed = true;
      if (opening !== undefined) await opening.catch(noop);
      const channel = ch;
      ch = undefined;
      if (channel !== undefined) await channel.close().catch(noop);
      if (owned && conn !== undefined) {
        const c = conn;
        conn = undefined;
        await c.close().catch(noop);
      }
    },
  };
  return source;
}
