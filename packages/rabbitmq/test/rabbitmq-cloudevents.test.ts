import { createMessageCatalog, defineEvent, incomingCloudEvent } from '@cqrs-ts/core';
import {
  createRabbitConsumer,
  createRabbitPublisher,
  ensureRabbitTopology,
  type RabbitPublisher,
} from '@cqrs-ts/rabbitmq';
import {
  type CloudEventFields,
  describeCloudEventsConformance,
  readableData,
} from '@cqrs-ts/testing/contracts';
import { CloudEvent, HTTP } from 'cloudevents';
import { describe, expect, it } from 'vitest';
import { waitFor } from '../../core/test/support/services.ts';
import {
  cleanup,
  drainQueue,
  RABBIT_URL,
  rabbitAvailable,
  rawChannel,
  topologyQueues,
  uniqueName,
} from './support.ts';

// The AMQP protocol binding: attributes as application properties prefixed `cloudEvents_` (the binding's current
// draft, what this sender writes) or `cloudEvents:` (what cqrs-ts writes), `datacontenttype` as the message's
// content-type; structured mode sends the JSON document with content-type application/cloudevents+json. The SDK
// has no AMQP codec: the sender maps the SDK's HTTP binary headers (`ce-x`) to properties, the reader back.
const available = await rabbitAvailable();

describeCloudEventsConformance('rabbitmq', async () => {
  if (!available) return undefined;
  const raw = await rawChannel();
  const exchanges: string[] = [];
  const queues: string[] = [];
  const consumers: { stop(): Promise<void> }[] = [];
  let exchange = '';
  let queue = '';
  let tap = '';
  let publisher: RabbitPublisher | undefined;
  const extra: RabbitPublisher[] = [];
  const topology = () => ({ exchange, queue, bindings: ['orders'] });
  return {
    topic: 'orders',
    async send(fields: CloudEventFields, mode) {
      const event = new CloudEvent(fields as never);
      const message = mode === 'binary' ? HTTP.binary(event) : HTTP.structured(event);
      const headers: Record<string, string> = {};
      let contentType: string | undefined;
      for (const [k, v] of Object.entries(message.headers)) {
        if (typeof v !== 'string') continue;
        if (k === 'content-type') contentType = v;
        else if (k.startsWith('ce-')) headers[`cloudEvents_${k.slice(3)}`] = v;
      }
      const body =
        message.body instanceof Uint8Array
          ? Buffer.from(message.body)
          : Buffer.from(typeof message.body === 'string' ? message.body : JSON.stringify(message.body));
      raw.ch.publish(exchange, 'orders', body, {
        persistent: true,
        headers,
        ...(contentType !== undefined ? { contentType } : {}),
      });
      await raw.ch.waitForConfirms();
    },
    consumer(options) {
      const c = createRabbitConsumer({ ...options, ...topology(), url: RABBIT_URL, name: 'conformance' });
      consumers.push(c);
      return c;
    },
    publisher(options) {
      if (options === undefined) return publisher!;
      const p = createRabbitPublisher({ url: RABBIT_URL, exchange, ...options });
      extra.push(p);
      return p;
    },
    async published(count) {
      return (await drainQueue(raw.ch, tap, count)).map((m) => {
        const headers: Record<string, string> = {};
        for (const [k, v] of Object.entries(m.properties.headers ?? {})) {
          if (k.startsWith('cloudEvents:')) headers[`ce-${k.slice(12)}`] = String(v);
        }
        if (m.properties.contentType !== undefined) headers['content-type'] = m.properties.contentType;
        const encoding = headers['ce-contentencoding'] ?? m.properties.contentEncoding;
        const event = HTTP.toEvent({
          headers,
          body: readableData(m.content, encoding),
        }) as CloudEvent<unknown>;
        event.validate();
        return event.toJSON() as CloudEventFields;
      });
    },
    async reset() {
      for (const c of consumers.splice(0)) await c.stop();
      await publisher?.close();
      for (const p of extra.splice(0)) await p.close();
      exchange = uniqueName('ce.ex');
      queue = uniqueName('ce.q');
      tap = uniqueName('ce.tap');
      exchanges.push(exchange);
      queues.push(...topologyQueues(queue, []), tap);
      await ensureRabbitTopology({ url: RABBIT_URL, ...topology() });
      await raw.ch.assertQueue(tap, { durable: false });
      await raw.ch.bindQueue(tap, exchange, 'orders');
      publisher = createRabbitPublisher({ url: RABBIT_URL, exchange });
    },
    async close() {
      for (const c of consumers.splice(0)) await c.stop();
      await publisher?.close();
      for (const p of extra.splice(0)) await p.close();
      await raw.close();
      await cleanup({ queues, exchanges });
    },
  };
});

const Shipped = defineEvent('com.example.order.shipped', { topic: 'orders' }).withPayload<{
  orderId: string;
}>();

describe.skipIf(!available)('rabbitmq: typed AMQP attribute values (issue 12)', () => {
  it('reads a native AMQP timestamp in time instead of putting the consumer clock in its place', async () => {
    const exchange = uniqueName('ce.ex');
    const queue = uniqueName('ce.q');
    const raw = await rawChannel();
    const seen: { at: string; time: string | undefined }[] = [];
    const consumer = createRabbitConsumer({
      url: RABBIT_URL,
      exchange,
      queue,
      bindings: ['orders'],
      name: 'typed',
      catalog: createMessageCatalog([Shipped]),
      handle(event) {
        seen.push({ at: event.metadata.requestedAt, time: incomingCloudEvent()?.time });
      },
    });
    try {
      await consumer.start();
      raw.ch.publish(exchange, 'orders', Buffer.from('{"orderId":"t"}'), {
        contentType: 'application/json',
        headers: {
          'cloudEvents:specversion': '1.0',
          'cloudEvents:id': 'typed-1',
          'cloudEvents:source': 'urn:legacy:erp',
          'cloudEvents:type': 'com.example.order.shipped',
          'cloudEvents:time': { '!': 'timestamp', value: 1_700_000_000 },
        },
      });
      await raw.ch.waitForConfirms();
      await waitFor(() => seen.length === 1, 10_000, 'the event');
      expect(seen).toEqual([{ at: '2023-11-14T22:13:20.000Z', time: '2023-11-14T22:13:20.000Z' }]);
    } finally {
      await consumer.stop();
      await raw.close();
      await cleanup({ queues: topologyQueues(queue, []), exchanges: [exchange] });
    }
  });
});
