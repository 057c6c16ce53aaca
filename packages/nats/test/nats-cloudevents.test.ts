import { createNatsConsumer, createNatsPublisher, ensureNatsStream, type NatsPublisher } from '@cqrs-ts/nats';
import {
  type CloudEventFields,
  describeCloudEventsConformance,
  readableData,
} from '@cqrs-ts/testing/contracts';
import { type JetStreamManager, jetstreamManager } from '@nats-io/jetstream';
import { headers as natsHeaders } from '@nats-io/transport-node';
import { CloudEvent, HTTP } from 'cloudevents';
import { connectTest, deleteStreams, natsAvailable, readStream, unique } from './support.ts';

// The NATS protocol binding: `ce-` headers (values percent-encoded) and `content-type` in binary mode, the event
// as one JSON document in structured mode. The official SDK's HTTP codec writes and reads the same headers.
const encode = (v: string) => v.replace(/[^\x21\x23-\x24\x26-\x7e]/gu, (c) => encodeURIComponent(c));

describeCloudEventsConformance('nats', async () => {
  if (!natsAvailable) return undefined;
  const nc = await connectTest();
  const jsm: JetStreamManager = await jetstreamManager(nc);
  const streams: string[] = [];
  const consumers: { stop(): Promise<void> }[] = [];
  let stream = '';
  let prefix = '';
  let publisher: NatsPublisher | undefined;
  const extra: Promise<NatsPublisher>[] = [];
  const closeExtra = async () => {
    for (const p of extra.splice(0)) await (await p).close();
  };
  return {
    topic: 'orders',
    async send(fields: CloudEventFields, mode) {
      const event = new CloudEvent(fields as never);
      const message = mode === 'binary' ? HTTP.binary(event) : HTTP.structured(event);
      const h = natsHeaders();
      for (const [k, v] of Object.entries(message.headers)) {
        if (typeof v === 'string') h.set(k, k.startsWith('ce-') ? encode(v) : v);
      }
      const body =
        message.body instanceof Uint8Array
          ? message.body
          : new TextEncoder().encode(
              typeof message.body === 'string' ? message.body : JSON.stringify(message.body),
            );
      await jsm.jetstream().publish(`${prefix}.orders`, body, { headers: h });
    },
    consumer(options) {
      const c = createNatsConsumer({ ...options, connection: nc, stream, name: 'conformance' });
      consumers.push(c);
      return c;
    },
    publisher(options) {
      if (options === undefined) return publisher!;
      const p = createNatsPublisher({ connection: nc, subjectPrefix: prefix, ...options });
      extra.push(p);
      return {
        capabilities: publisher!.capabilities,
        publish: async (messages) => (await p).publish(messages),
      };
    },
    async published(count) {
      const stored = await readStream(nc, stream);
      return stored.slice(0, count).map((m) => {
        const headers: Record<string, string> = {};
        for (const [k, values] of m.headers ?? []) {
          headers[k.toLowerCase()] = k.toLowerCase().startsWith('ce-')
            ? decodeURIComponent(values[0]!)
            : values[0]!;
        }
        const event = HTTP.toEvent({
          headers,
          body: readableData(m.data, headers['ce-contentencoding']),
        }) as CloudEvent<unknown>;
        event.validate();
        return event.toJSON() as CloudEventFields;
      });
    },
    async reset() {
      for (const c of consumers.splice(0)) await c.stop();
      await publisher?.close();
      await closeExtra();
      stream = unique('CEC');
      prefix = stream.toLowerCase();
      streams.push(stream, `${stream}_DLQ`);
      await ensureNatsStream({ connection: nc, name: stream, subjects: [`${prefix}.>`] });
      publisher = await createNatsPublisher({ connection: nc, subjectPrefix: prefix });
    },
    async close() {
      for (const c of consumers.splice(0)) await c.stop();
      await publisher?.close();
      await closeExtra();
      await deleteStreams(jsm, ...streams);
      await nc.close();
    },
  };
});
