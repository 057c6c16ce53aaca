/**
 * The broadcast contract against a real Kafka broker: only when KAFKA_BROKERS is set (no broker runs on the
 * development machines); otherwise skipped with a printed note. The option checks run everywhere.
 */
import { ConfigurationError } from '@cqrs-ts/core';
import {
  createKafkaBroadcastConsumer,
  createKafkaConsumer,
  createKafkaPublisher,
  ensureKafkaTopics,
  type KafkaPublisher,
  parseKafkaBrokers,
} from '@cqrs-ts/kafka';
import { type BroadcastHarness, describeBroadcastContract } from '@cqrs-ts/testing/contracts';
import { Admin } from '@platformatic/kafka';
import { describe, expect, it } from 'vitest';
import { uniqueSuffix } from '../../core/test/support/services.ts';

const BROKERS = parseKafkaBrokers(process.env.KAFKA_BROKERS);
if (BROKERS.length === 0) {
  console.warn('SKIP kafka broadcast contract: KAFKA_BROKERS is not set (no Kafka broker on this machine)');
}
let seq = 0;
const name = (what: string) => `cqrs-kb-${what}-${uniqueSuffix}-${++seq}`;

/** A fresh topic per test: a group per broadcast instance, one shared group competing. */
describeBroadcastContract('kafka', async (): Promise<BroadcastHarness | undefined> => {
  if (BROKERS.length === 0) return undefined;
  const admin = new Admin({ clientId: 'kb-contract-admin', bootstrapBrokers: BROKERS });
  let topic = '';
  let groupId = '';
  let publisher: KafkaPublisher | undefined;
  return {
    get topic() {
      return topic;
    },
    publisher: () => publisher!,
    broadcast: (options) => createKafkaBroadcastConsumer({ ...options, brokers: BROKERS, topics: [topic] }),
    competing: (options) => createKafkaConsumer({ ...options, brokers: BROKERS, groupId, topics: [topic] }),
    async exists(instance) {
      return (await admin.listGroups()).has(instance);
    },
    async reset() {
      await publisher?.close();
      topic = name('broadcast');
      groupId = name('group');
      await ensureKafkaTopics({ brokers: BROKERS, topics: [topic], partitions: 2 });
      publisher = createKafkaPublisher({ brokers: BROKERS, clientId: 'kb-pub', topic: () => topic });
    },
    async close() {
      await publisher?.close();
      await admin.deleteTopics({ topics: [topic] }).catch(() => undefined);
      await admin.close();
    },
  };
});

describe('kafka broadcast consumer options', () => {
  const base = { brokers: ['127.0.0.1:9092'], topics: ['orders'], name: 'cache', handle: () => {} };
  it('rejects bad options with a ConfigurationError', () => {
    expect(() => createKafkaBroadcastConsumer({ ...base, brokers: [] })).toThrow(ConfigurationError);
    expect(() => createKafkaBroadcastConsumer({ ...base, topics: ['bad topic'] })).toThrow(
      ConfigurationError,
    );
    expect(() => createKafkaBroadcastConsumer({ ...base, from: 'earliest' as never })).toThrow(
      ConfigurationError,
    );
    expect(() => createKafkaBroadcastConsumer({ ...base, name: '' })).toThrow(ConfigurationError);
  });
  it('names each instance uniquely (its own group)', () => {
    const a = createKafkaBroadcastConsumer(base);
    const b = createKafkaBroadcastConsumer(base);
    expect(a.instance).toMatch(/^cache-[0-9a-f]{12}$/);
    expect(a.instance).not.toBe(b.instance);
  });
});
