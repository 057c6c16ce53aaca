import {
  createInMemoryBroker,
  createInMemoryConsumer,
  type InMemoryConsumer,
  jsonPayloadSerializer,
} from '@cqrs-ts/core';
import { describeBrokerContract } from '@cqrs-ts/testing/contracts';

let broker = createInMemoryBroker();
let consumers: InMemoryConsumer[] = [];
let run = 0;
let topic = 'ticks-0';

describeBrokerContract('in-memory', async () => ({
  get topic() {
    return topic;
  },
  publisher: () => broker,
  consumer(options) {
    const consumer = createInMemoryConsumer({ ...options, broker, topics: [topic], name: 'contract' });
    consumers.push(consumer);
    return consumer;
  },
  async publishRaw(data, attributes = {}) {
    const id = attributes.id ?? `raw-${++run}`;
    const headers = { datacontenttype: jsonPayloadSerializer.contentType, ...attributes };
    await broker.publish([{ id, type: 'raw', topic, key: null, headers, body: data, attempts: 0 }]);
  },
  deadLetters: async () =>
    consumers.flatMap((c) =>
      c.deadLetters().map((d) => ({ id: d.message.headers.id, reason: d.reason, data: d.message.body })),
    ),
  backlog: async () => consumers.reduce((n, c) => n + c.backlog, 0),
  async reset() {
    consumers = []; // the suite stops the consumers it made
    broker = createInMemoryBroker();
    topic = `ticks-${++run}`;
  },
  close: async () => {},
}));
