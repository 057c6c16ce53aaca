import { ConfigurationError } from '@cqrs-ts/core';
import {
  type BroadcastConsumer,
  type BroadcastConsumerOptions,
  type BroadcastSubscription,
  createBroadcastConsumer,
} from '@cqrs-ts/core/spi';
import { Admin, Consumer } from '@platformatic/kafka';
import type { KafkaConnectionOptions, KafkaConsumerLike, KafkaMessageStreamLike } from './kafka-options.ts';
import { assertBrokers } from './kafka-publisher.ts';
import { fromKafkaHeaders } from './kafka-wire.ts';

/** Options of {@link createKafkaBroadcastConsumer}. */
export interface KafkaBroadcastConsumerOptions extends KafkaConnectionOptions, BroadcastConsumerOptions {
  readonly topics: readonly string[];
  /**
   * Where each instance starts: the end of each partition when its group is assigned (`'new'`) or the start
   * (`'all'`). @default 'new'
   */
  readonly from?: 'new' | 'all';
  /** Longest fetch wait on the broker. @default 500 */
  readonly maxWaitTimeMs?: number;
}

const TOPIC_RE = /^[a-zA-Z0-9._-]{1,249}$/;
const EMPTY = new Uint8Array(0);

/**
 * A broadcast (non-competing) consumer of Kafka topics: each instance joins a consumer group of its own (the
 * group id is the instance name, unique per instance), commits nothing, and so reads every partition itself.
 * `stop()` leaves and deletes that group. See `BroadcastConsumer` for the semantics.
 * @throws ConfigurationError on bad options
 */
export function createKafkaBroadcastConsumer(options: KafkaBroadcastConsumerOptions): BroadcastConsumer {
  const what = 'kafka broadcast consumer';
  if (options === null || typeof options !== 'object')
    throw new ConfigurationError(`${what}: options required`);
  const brokers = assertBrokers(options.brokers, what);
  const topics = options.topics;
  if (!Array.isArray(topics) || topics.length === 0)
    throw new ConfigurationError(`${what}: topics must be a non-empty array`);
  for (const t of topics) {
    if (typeof t !== 'string' || !TOPIC_RE.test(t))
      throw new ConfigurationError(`${what}: invalid topic ${JSON.stringify(String(t).slice(0, 80))}`);
  }
  const from = options.from ?? 'new';
  if (from !== 'new' && from !== 'all') throw new ConfigurationError(`${what}: from must be 'new' or 'all'`);
  const clientId = options.clientId ?? 'cqrs-ts';

  return createBroadcastConsumer({
    ...options,
    what,
    source: {
      async open({ instance, deliver, failed }): Promise<BroadcastSubscription> {
        const client = new Consumer({
          ...(options.clientOptions ?? {}),
          clientId,
          bootstrapBrokers: brokers,
          groupId: instance,
          autocommit: false,
        }) as unknown as KafkaConsumerLike;
        let stream: KafkaMessageStreamLike;
        try {
          stream = await client.consume({
            topics: [...topics],
            mode: from === 'all' ? 'earliest' : 'latest',
            autocommit: false,
            maxWaitTime: options.maxWaitTimeMs ?? 500,
          });
        } catch (error) {
          await client.close(true).catch(() => undefined);
          throw error;
        }
        let connected = true;
        const loop = (async () => {
          for await (const m of stream) {
            await deliver({
              attributes: fromKafkaHeaders(m.headerEntries),
              data: m.value ?? EMPTY,
              deliveryAttempt: 1,
              source: m.topic,
            });
          }
        })().catch((error: unknown) => {
          connected = false;
          failed(error);
        });
        return {
          connected: () => connected,
          async close() {
            connected = false;
            await stream.close().catch(() => undefined);
            await loop;
            await client.close().catch(() => undefined);
            // the group of one instance is of no use once it left: remove it rather than let it expire
            const admin = new Admin({
              ...(options.clientOptions ?? {}),
              clientId: `${clientId}-admin`,
              bootstrapBrokers: brokers,
            });
            try {
              await admin.deleteGroups({ groups: [instance] });
            } catch {
              // the broker removes an empty group without offsets by itself
            } finally {
              await admin.close().catch(() => undefined);
            }
          },
        };
      },
    },
  });
}
