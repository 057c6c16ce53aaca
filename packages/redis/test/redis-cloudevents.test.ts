import {
  createRedisStreamsConsumer,
  createRedisStreamsPublisher,
  type RedisStreamsPublisher,
} from '@cqrs-ts/redis';
import {
  type CloudEventFields,
  describeCloudEventsConformance,
  readableData,
} from '@cqrs-ts/testing/contracts';
import { CloudEvent, Kafka } from 'cloudevents';
import { deleteKeys, entries, keyPrefix, newRedis, REDIS_URL, redisAvailable } from './support.ts';

// Redis streams have no CloudEvents binding of their own: cqrs-ts writes each entry like a Kafka record of the
// Kafka binding (`ce_` fields and `content-type` in binary mode, the JSON document in structured mode) plus a
// `data` field, so the official SDK's Kafka codec writes and reads them.
const available = await redisAvailable();

describeCloudEventsConformance('redis', async () => {
  if (!available) return undefined;
  const redis = newRedis();
  const root = keyPrefix('conformance');
  const consumers: { stop(): Promise<void> }[] = [];
  let run = 0;
  let stream = '';
  let prefix = '';
  let publisher: RedisStreamsPublisher | undefined;
  const extra: RedisStreamsPublisher[] = [];
  return {
    topic: 'orders',
    async send(fields: CloudEventFields, mode) {
      const event = new CloudEvent(fields as never);
      const record = mode === 'binary' ? Kafka.binary(event) : Kafka.structured(event);
      const args: (string | Buffer)[] = [];
      for (const [k, v] of Object.entries(record.headers)) if (typeof v === 'string') args.push(k, v);
      const value =
        record.value instanceof Uint8Array
          ? Buffer.from(record.value)
          : Buffer.from(typeof record.value === 'string' ? record.value : JSON.stringify(record.value));
      await redis.xadd(stream, '*', ...args, 'data', value);
    },
    consumer({ concurrency, ...processor }) {
      const c = createRedisStreamsConsumer({
        url: REDIS_URL,
        streams: [stream],
        group: 'conformance',
        blockMs: 200,
        ...(concurrency !== undefined ? { concurrency } : {}),
        processor: { ...processor, name: 'conformance' },
      });
      consumers.push(c);
      return c;
    },
    publisher(options) {
      if (options === undefined) return publisher!;
      const p = createRedisStreamsPublisher({ redis, streamPrefix: prefix, ...options });
      extra.push(p);
      return p;
    },
    async published(count) {
      return (await entries(redis, stream)).slice(0, count).map((e) => {
        const headers: Record<string, string> = {};
        for (const [k, v] of Object.entries(e.fields)) if (k !== 'data') headers[k] = v.toString();
        const event = Kafka.toEvent({
          headers,
          key: headers.ce_partitionkey ?? '',
          value: readableData(e.fields.data!, headers.ce_contentencoding),
        } as never) as CloudEvent<unknown>;
        event.validate();
        return event.toJSON() as CloudEventFields;
      });
    },
    async reset() {
      for (const c of consumers.splice(0)) await c.stop();
      await publisher?.close();
      for (const p of extra.splice(0)) await p.close();
      prefix = `${root}${++run}:`;
      stream = `${prefix}orders`;
      publisher = createRedisStreamsPublisher({ redis, streamPrefix: prefix });
    },
    async close() {
      for (const c of consumers.splice(0)) await c.stop();
      await publisher?.close();
      for (const p of extra.splice(0)) await p.close();
      await deleteKeys(redis, root);
      redis.disconnect();
    },
  };
});
