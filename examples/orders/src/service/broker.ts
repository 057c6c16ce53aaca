/** The broker side: a publisher for the relay and a consumer factory, in memory or on NATS JetStream. */
import { createInMemoryBroker, createInMemoryConsumer, type MessageConsumer } from '@cqrs-ts/core';
import type { MessagePublisher } from '@cqrs-ts/core/spi';
import type { BrokerConfig } from './config.ts';

type ProcessorOptions = Omit<Parameters<typeof createInMemoryConsumer>[0], 'broker' | 'topics' | 'name'>;

export interface OrdersBroker {
  readonly publisher: MessagePublisher;
  /** A durable consumer named `name` of `topics`. */
  consumer(name: string, topics: readonly string[], options: ProcessorOptions): MessageConsumer;
  close(): Promise<void>;
}

export async function createOrdersBroker(config: BrokerConfig): Promise<OrdersBroker> {
  if (config.kind === 'memory') {
    const broker = createInMemoryBroker();
    return {
      publisher: broker,
      consumer: (name, topics, options) => createInMemoryConsumer({ ...options, broker, topics, name }),
      close: async () => {},
    };
  }
  const [{ connect }, nats] = await Promise.all([import('@nats-io/transport-node'), import('@cqrs-ts/nats')]);
  const connection = await connect({ servers: config.servers.split(','), maxReconnectAttempts: -1 });
  await nats.ensureNatsStream({ connection, name: config.stream, subjects: [`${config.subjectPrefix}.>`] });
  const publisher = await nats.createNatsPublisher({ connection, subjectPrefix: config.subjectPrefix });
  return {
    publisher,
    consumer: (name, topics, options) =>
      nats.createNatsConsumer({
        ...options,
        connection,
        stream: config.stream,
        name,
        ackWaitMs: config.ackWaitMs,
        filterSubjects: topics.map((t) => `${config.subjectPrefix}.${t}`),
      }),
    async close() {
      await publisher.close();
      await connection.drain();
    },
  };
}
