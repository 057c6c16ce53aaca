import { ConfigurationError } from '@cqrs-ts/core';
import {
  type BroadcastConsumer,
  type BroadcastConsumerOptions,
  type BroadcastSubscription,
  createBroadcastConsumer,
} from '@cqrs-ts/core/spi';
import { streamsOf } from './redis-consumer.ts';
import { close, connect, type RedisClientLike, type RedisConnectionOptions } from './redis-options.ts';
import { DATA_FIELD, DEFAULT_FIELD_PREFIX, decodeFields, text } from './redis-wire.ts';

/** Options of {@link createRedisBroadcastConsumer}. */
export type RedisBroadcastConsumerOptions = RedisConnectionOptions &
  BroadcastConsumerOptions & {
    /** Stream keys to read (e.g. the publisher's `streamPrefix + topic`). */
    readonly streams: readonly string[];
    /**
     * Where each instance starts: entries added after `start()` (`'new'`), every entry (`'all'`), or after this
     * entry id in every stream (exclusive, as `XREAD` reads). @default 'new'
     */
    readonly from?: 'new' | 'all' | { readonly id: string };
    /** Entries fetched per read (`COUNT`). @default 64 */
    readonly batch?: number;
    /** How long one `XREAD` blocks. @default 2000 */
    readonly blockMs?: number;
    /** Prefix of the attribute fields. @default 'ce_' */
    readonly fieldPrefix?: string;
  };

const STREAM_ID = /^\d+(-\d+)?$/;

/**
 * A broadcast (non-competing) consumer of Redis Streams: each instance reads with `XREAD BLOCK` on a connection
 * of its own (named after the instance), without a consumer group, so every instance sees every entry and
 * nothing is left pending. `stop()` closes that connection. See `BroadcastConsumer` for the semantics.
 * @throws ConfigurationError on bad options
 */
export function createRedisBroadcastConsumer(options: RedisBroadcastConsumerOptions): BroadcastConsumer {
  const what = 'redis broadcast consumer';
  if (options === null || typeof options !== 'object')
    throw new ConfigurationError(`${what}: options required`);
  const streams = options.streams;
  if (!Array.isArray(streams) || streams.length === 0 || streams.length > 256)
    throw new ConfigurationError(`${what}: streams must list 1..256 stream keys`);
  for (const s of streams) {
    if (typeof s !== 'string' || s.length === 0 || s.length > 1024)
      throw new ConfigurationError(`${what}: stream keys must be 1..1024 chars`);
  }
  if (new Set(streams).size !== streams.length) throw new ConfigurationError(`${what}: duplicate stream`);
  const from = options.from ?? 'new';
  if (
    from !== 'new' &&
    from !== 'all' &&
    !(typeof from === 'object' && typeof from?.id === 'string' && STREAM_ID.test(from.id))
  )
    throw new ConfigurationError(`${what}: from must be 'new', 'all' or { id: '<ms>-<seq>' }`);
  const positive = (value: number, name: string) => {
    if (!(Number.isSafeInteger(value) && value >= 1))
      throw new ConfigurationError(`${what}: ${name} must be an integer >= 1`);
    return value;
  };
  const batch = positive(options.batch ?? 64, 'batch');
  const blockMs = positive(options.blockMs ?? 2000, 'blockMs');
  const prefix = options.fieldPrefix ?? DEFAULT_FIELD_PREFIX;
  if (typeof prefix !== 'string' || prefix.length === 0 || prefix.length > 32 || prefix === DATA_FIELD)
    throw new ConfigurationError(`${what}: fieldPrefix must be 1..32 chars`);
  const { redis, url } = options;
  if (
    redis !== undefined
      ? url !== undefined || typeof redis?.duplicate !== 'function'
      : typeof url !== 'string' || !/^rediss?:\/\//.test(url)
  )
    throw new ConfigurationError(`${what}: give either an ioredis client (redis) or a redis:// url`);

  return createBroadcastConsumer({
    ...options,
    what,
    source: {
      async open({ instance, deliver, failed, reconnected }): Promise<BroadcastSubscription> {
        const { client, owned } = connect(options, what);
        const reader: RedisClientLike = client.duplicate();
        reader.on('error', () => {});
        let closed = false;
        let connected = false;
        // ioredis reconnects by itself: name the new connection again, and count it
        let ready = 0;
        reader.on('close', () => {
          connected = false;
        });
        reader.on('ready', () => {
          if (++ready === 1 || closed) return;
          reader.call('CLIENT', 'SETNAME', instance).catch(() => undefined);
          connected = true;
          reconnected();
        });
        let ids: string[];
        try {
          await reader.call('CLIENT', 'SETNAME', instance);
          if (from === 'all') ids = streams.map(() => '0-0');
          else if (typeof from === 'object') ids = streams.map(() => from.id);
          else {
            // 'new' is the last id now: what is added after open() is read, however late the first XREAD runs
            ids = [];
            for (const s of streams) {
              const last = (await client.call('XREVRANGE', s, '+', '-', 'COUNT', '1')) as unknown[][];
              ids.push(last.length > 0 ? text(last[0]![0]) : '0-0');
            }
          }
          connected = true;
        } catch (error) {
          reader.disconnect();
          if (owned) await close(client);
          throw error;
        }
        const loop = (async () => {
          let failing = false;
          while (!closed) {
            let reply: unknown;
            try {
              reply = await reader.callBuffer(
                'XREAD',
                'COUNT',
                batch,
                'BLOCK',
                blockMs,
                'STREAMS',
                ...streams,
                ...ids,
              );
              connected = true;
              if (failing) {
                failing = false;
                reconnected();
              }
            } catch (error) {
              if (closed) return;
              connected = false;
              failing = true;
              failed(error);
              await new Promise<void>((r) => setTimeout(r, 500).unref?.());
              continue;
            }
            for (const [stream, entries] of streamsOf(reply)) {
              const index = streams.indexOf(stream);
              for (const [rawId, fields] of entries) {
                if (closed) return;
                if (index >= 0) ids[index] = text(rawId);
                if (!Array.isArray(fields)) continue;
                const decoded = decodeFields(fields, prefix);
                await deliver({
                  attributes: decoded.ok ? decoded.attributes : {},
                  data: decoded.ok ? decoded.data : new Uint8Array(0),
                  deliveryAttempt: 1,
                  source: stream,
                });
              }
            }
          }
        })();
        return {
          connected: () => connected,
          async close() {
            closed = true;
            // ends a blocked XREAD at once
            reader.disconnect();
            await loop;
            if (owned) await close(client);
          },
        };
      },
    },
  });
}
