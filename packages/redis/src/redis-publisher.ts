import { createHash } from 'node:crypto';
import { type AnyEvent, BrokerError, ConfigurationError } from '@cqrs-ts/core';
import {
  createAvailabilityListeners,
  createOutboxEncoder,
  type MessagePublisher,
  type OutboxMessage,
  type PublisherCapabilities,
  type PublishResult,
  toOutboxMessages,
} from '@cqrs-ts/core/spi';
import { classifyRedisError, errorMessage } from './redis-errors.ts';
import { close, connect, type RedisArgument, type RedisStreamsPublisherOptions } from './redis-options.ts';
import { appendFields, DEFAULT_FIELD_PREFIX, text } from './redis-wire.ts';

/** A {@link MessagePublisher} over Redis Streams; also publishes events directly. */
export interface RedisStreamsPublisher extends MessagePublisher, AsyncDisposable {
  /**
   * Serializes and publishes events (without an outbox): one result per event, in order.
   * @throws SerializationError, PayloadTooLargeError, OutboxError for events that cannot be encoded (then
   *   nothing is published).
   */
  publishEvents(events: readonly AnyEvent[]): Promise<readonly PublishResult[]>;
  /**
   * Calls `listener` each time the client is ready again after its connection was lost (ioredis reconnected):
   * a relay whose circuit opened then probes at once instead of at its next probe time. Returns a function that
   * removes it. The publisher listens to the client only while it has listeners, and stops at `close()`.
   */
  onAvailable(listener: () => void): () => void;
  /** Closes the connection when the publisher opened it (from `url`); a given client is left open. */
  close(): Promise<void>;
}

/**
 * Appends the messages of one call in order and stops at the first failure, so the ones after it are not
 * appended: this is what makes `preservesKeyOrder` true. Replies: entry id, `=` duplicate, `!error`.
 * KEYS: per message its stream (and its dedupe key when ARGV[2] is set). ARGV: maxlen, dedupe ttl, then per
 * message the field count followed by the fields.
 */
const APPEND_SCRIPT = `
local maxlen = ARGV[1]
local ttl = ARGV[2]
local stride = 1
if ttl ~= '' then stride = 2 end
local out = {}
local pos = 3
for i = 1, #KEYS / stride do
  local c = tonumber(ARGV[pos])
  local stream = KEYS[(i - 1) * stride + 1]
  local dkey = nil
  local fresh = true
  if stride == 2 then
    dkey = KEYS[(i - 1) * stride + 2]
    fresh = redis.call('SET', dkey, '1', 'NX', 'PX', ttl)
  end
  if not fresh then
    out[i] = '='
  else
    local ok, res
    if maxlen ~= '' then
      ok, res = pcall(redis.call, 'XADD', stream, 'MAXLEN', '~', maxlen, '*', unpack(ARGV, pos + 1, pos + c))
    else
      ok, res = pcall(redis.call, 'XADD', stream, '*', unpack(ARGV, pos + 1, pos + c))
    end
    if not ok then
      if dkey then redis.call('DEL', dkey) end
      if type(res) == 'table' and res.err then res = res.err end
      out[i] = '!' .. tostring(res)
      return out
    end
    out[i] = res
  end
  pos = pos + c + 1
end
return out
`;
const APPEND_SHA = createHash('sha1').update(APPEND_SCRIPT).digest('hex');

/** A script call carries at most this many bytes of data; bigger batches are sent as several calls, in order. */
const CHUNK_BYTES = 4 * 1024 * 1024;

const OK: PublishResult = Object.freeze({ ok: true });

const skipped = (message: string): PublishResult => ({
  ok: false,
  error: new BrokerError('skipped', `redis: ${message}`),
  retryable: true,
});

/**
 * Creates a Redis Streams publisher for the outbox relay and for direct use. Each message becomes one entry
 * (`XADD <stream> [MAXLEN ~ n] * ce_id ... content-type ... data <bytes>`) in the stream named after its topic.
 * One `publish` call is one round trip (a Lua script appending the batch in order and stopping at the first
 * failure), so messages sharing a key keep their order and `capabilities.preservesKeyOrder` is `true`.
 *
 * Delivery is at least once: a timed-out or retried call may append an entry twice (consumers dedupe with the
 * inbox; `dedupeWindowMs` suppresses most such duplicates at the source).
 * @throws ConfigurationError for bad options.
 */
export function createRedisStreamsPublisher(options: RedisStreamsPublisherOptions): RedisStreamsPublisher {
  const what = 'redis streams publisher';
  if (options === null || typeof options !== 'object')
    throw new ConfigurationError(`${what}: options required`);
  const prefix = options.fieldPrefix ?? DEFAULT_FIELD_PREFIX;
  if (typeof prefix !== 'string' || prefix.length === 0 || prefix.length > 32 || prefix === 'data') {
    throw new ConfigurationError(`${what}: fieldPrefix must be 1..32 chars`);
  }
  const streamPrefix = options.streamPrefix ?? '';
  if (typeof streamPrefix !== 'string')
    throw new ConfigurationError(`${what}: streamPrefix must be a string`);
  const streamOf = options.stream ?? ((m: OutboxMessage) => streamPrefix + m.topic);
  if (typeof streamOf !== 'function') throw new ConfigurationError(`${what}: stream must be a function`);
  const maxLen = options.maxLen;
  if (maxLen !== undefined && (!Number.isInteger(maxLen) || maxLen < 1)) {
    throw new ConfigurationError(`${what}: maxLen must be an integer >= 1`);
  }
  const dedupeMs = options.dedupeWindowMs ?? 0;
  if (!Number.isInteger(dedupeMs) || dedupeMs < 0) {
    throw new ConfigurationError(`${what}: dedupeWindowMs must be an integer >= 0`);
  }
  const dedupePrefix = options.dedupeKeyPrefix ?? 'cqrs:dedupe:';
  const maxBatchSize = options.maxBatchSize ?? 1000;
  if (!Number.isInteger(maxBatchSize) || maxBatchSize < 1 || maxBatchSize > 10_000) {
    throw new ConfigurationError(`${what}: maxBatchSize must be an integer in 1..10000`);
  }
  const timeoutMs = options.timeoutMs ?? 10_000;
  if (!Number.isFinite(timeoutMs) || timeoutMs <= 0) {
    throw new ConfigurationError(`${what}: timeoutMs must be > 0`);
  }
  const compression = options.compression;
  if (compression !== undefined && compression.algorithm !== 'gzip' && compression.algorithm !== 'br') {
    throw new ConfigurationError(`${what}: unknown compression ${String(compression.algorithm)}`);
  }
  const encoder = createOutboxEncoder({
    ...(options.source !== undefined ? { source: options.source } : {}),
    ...(options.serializer !== undefined ? { serializer: options.serializer } : {}),
    ...(options.maxPayloadBytes !== undefined ? { maxPayloadBytes: options.maxPayloadBytes } : {}),
  });
  const { client, owned } = connect(options, what);
  const maxLenArg = maxLen === undefined ? '' : String(maxLen);
  const ttlArg = dedupeMs === 0 ? '' : String(dedupeMs);
  const fieldNames = new Map<string, string>();
  const capabilities: PublisherCapabilities = Object.freeze({ preservesKeyOrder: true, maxBatchSize });
  let closed = false;
  // ioredis emits 'ready' once connected, again after every reconnection
  const available = createAvailabilityListeners((notify) => {
    client.on('ready', notify);
    return () => client.off('ready', notify);
  });

  async function evalScript(keys: readonly string[], argv: readonly RedisArgument[]): Promise<unknown> {
    try {
      return await client.call('EVALSHA', APPEND_SHA, keys.length, ...keys, ...argv);
    } catch (error) {
      if (!errorMessage(error).startsWith('NOSCRIPT')) throw error;
      return client.call('EVAL', APPEND_SCRIPT, keys.length, ...keys, ...argv);
    }
  }

  /** Sends messages `[from, to)` of `batch` that passed validation; fills `results`. */
  async function sendChunk(
    batch: readonly OutboxMessage[],
    indexes: readonly number[],
    keys: readonly string[],
    argv: RedisArgument[],
    results: PublishResult[],
  ): Promise<boolean> {
    const reply = await evalScript(keys, argv);
    const replies = Array.isArray(reply) ? reply : [];
    for (let j = 0; j < indexes.length; j++) {
      const i = indexes[j]!;
      const r = replies[j];
      if (r === undefined) {
        results[i] = skipped(`${batch[i]!.id} not appended: an earlier message of the call failed`);
        continue;
      }
      const s = text(r);
      if (s.startsWith('!')) {
        const error = classifyRedisError(s.slice(1), `XADD ${keys[j * (ttlArg === '' ? 1 : 2)]}`);
        results[i] = { ok: false, error, retryable: error.retryable };
      } else results[i] = OK;
    }
    return replies.length === indexes.length && !text(replies[replies.length - 1]).startsWith('!');
  }

  async function publishAll(batch: readonly OutboxMessage[]): Promise<PublishResult[]> {
    const results: PublishResult[] = new Array(batch.length);
    let failedKeys: Set<string> | undefined;
    let indexes: number[] = [];
    let keys: string[] = [];
    let argv: RedisArgument[] = [maxLenArg, ttlArg];
    let bytes = 0;
    let stopped = false;
    const flush = async () => {
      if (indexes.length === 0) return;
      if (stopped) {
        for (const i of indexes) {
          results[i] = skipped(`${batch[i]!.id} not appended: an earlier message of the call failed`);
        }
      } else if (!(await sendChunk(batch, indexes, keys, argv, results))) stopped = true;
      indexes = [];
      keys = [];
      argv = [maxLenArg, ttlArg];
      bytes = 0;
    };
    for (let i = 0; i < batch.length; i++) {
      const m = batch[i]!;
      const problem = validate(m);
      if (problem === undefined && m.key !== null && failedKeys?.has(m.key)) {
        results[i] = skipped(`${m.id} not appended: an earlier message with its key failed`);
        continue;
      }
      let stream: string | undefined;
      let count: number | string = problem ?? 0;
      if (problem === undefined) {
        try {
          stream = streamOf(m);
          if (typeof stream !== 'string' || stream.length === 0 || stream.length > 1024) {
            count = 'stream name must be 1..1024 chars';
          }
        } catch (error) {
          count = `stream(): ${errorMessage(error)}`;
        }
      }
      if (typeof count !== 'string') {
        const at = argv.length;
        argv.push(0);
        count = appendFields(argv, m.headers, m.body, fieldNames, compression, prefix);
        if (typeof count === 'string') argv.length = at;
        else argv[at] = count;
      }
      if (typeof count === 'string') {
        results[i] = {
          ok: false,
          error: new BrokerError('invalid', `redis: ${String(m?.id).slice(0, 80)}: ${count}`),
          retryable: false,
        };
        if (m !== null && typeof m === 'object' && typeof m.key === 'string') {
          failedKeys ??= new Set();
          failedKeys.add(m.key);
        }
        continue;
      }
      indexes.push(i);
      keys.push(stream as string);
      if (ttlArg !== '') keys.push(dedupePrefix + m.id);
      bytes += m.body.byteLength;
      if (bytes >= CHUNK_BYTES) await flush();
    }
    await flush();
    return results;
  }

  async function publish(
    batch: readonly OutboxMessage[],
    publishOptions?: { readonly signal?: AbortSignal },
  ): Promise<readonly PublishResult[]> {
    if (closed) throw new BrokerError('closed', 'redis: publisher is closed');
    if (!Array.isArray(batch)) throw new ConfigurationError(`${what}: publish expects an array of messages`);
    if (batch.length === 0) return [];
    const signal = publishOptions?.signal;
    let timer: ReturnType<typeof setTimeout> | undefined;
    let onAbort: (() => void) | undefined;
    const guard = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new BrokerError('timeout', `redis: publish not acknowledged within ${timeoutMs} ms`)),
        timeoutMs,
      );
      if (signal !== undefined) {
        onAbort = () =>
          reject(new BrokerError('cancelled', 'redis: publish aborted', { cause: signal.reason }));
        if (signal.aborted) onAbort();
        else signal.addEventListener('abort', onAbort, { once: true });
      }
    });
    try {
      return await Promise.race([publishAll(batch), guard]);
    } catch (error) {
      const e = classifyRedisError(error, 'publish');
      return batch.map(() => ({ ok: false, error: e, retryable: e.retryable }));
    } finally {
      clearTimeout(timer);
      if (onAbort !== undefined) signal?.removeEventListener('abort', onAbort);
    }
  }

  return {
    capabilities,
    publish,
    async publishEvents(events) {
      const records = encoder.encode(events, Date.now());
      const messages = toOutboxMessages(records);
      return publish(messages);
    },
    onAvailable: available.add,
    async close() {
      if (closed) return;
      closed = true;
      available.clear();
      if (owned) await close(client);
    },
    async [Symbol.asyncDispose]() {
      await this.close();
    },
  };
}

function validate(m: OutboxMessage): string | undefined {
  if (m === null || typeof m !== 'object') return 'not a message';
  if (typeof m.id !== 'string' || m.id.length === 0 || m.id.length > 256) return 'invalid id';
  if (typeof m.topic !== 'string' || m.topic.length === 0) return 'invalid topic';
  if (m.key !== null && typeof m.key !== 'string') return 'invalid key';
  if (m.headers === null || typeof m.headers !== 'object') return 'headers missing';
  if (!(m.body instanceof Uint8Array)) return 'body is not bytes';
  return undefined;
}
