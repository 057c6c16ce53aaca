import { BrokerError, ConfigurationError } from '@cqrs-ts/core';
import { Admin } from '@platformatic/kafka';
import { classifyKafkaError, hasKafkaErrorCode } from './kafka-errors.ts';
import type { KafkaConnectionOptions } from './kafka-options.ts';
import { assertBrokers } from './kafka-publisher.ts';

/** A topic to create when missing. */
export interface KafkaTopicSpec {
  readonly topic: string;
  /** @default 1 (or `partitions` of the options) */
  readonly partitions?: number;
  /** Replication factor. @default 1 (or `replicas` of the options) */
  readonly replicas?: number;
  /** Topic configs, e.g. `{ 'retention.ms': '604800000' }`. */
  readonly configs?: Readonly<Record<string, string>>;
}

/** Options of {@link ensureKafkaTopics}. */
export interface EnsureKafkaTopicsOptions extends KafkaConnectionOptions {
  readonly topics: ReadonlyArray<string | KafkaTopicSpec>;
  /** Default partitions of new topics. @default 1 */
  readonly partitions?: number;
  /** Default replication factor of new topics. @default 1 */
  readonly replicas?: number;
  /**
   * Also creates `<topic>.DLT` (or what this returns) for each topic, with the same settings; pass the
   * consumer's `deadLetterTopic`. Default: no dead-letter topics.
   */
  readonly deadLetterTopic?: (topic: string) => string;
}

const TOPIC_RE = /^[a-zA-Z0-9._-]{1,249}$/;

/**
 * Creates the topics that do not exist yet (existing ones are left as they are, a concurrent creation is
 * fine) and returns the names it created. Uses a short-lived admin client.
 */
export async function ensureKafkaTopics(options: EnsureKafkaTopicsOptions): Promise<string[]> {
  const specs = new Map<
    string,
    { topic: string; partitions: number; replicas: number; configs: KafkaTopicSpec['configs'] }
  >();
  const dp = options.partitions ?? 1;
  const dr = options.replicas ?? 1;
  if (!Array.isArray(options.topics) || options.topics.length === 0) {
    throw new ConfigurationError('ensureKafkaTopics: topics must be a non-empty array');
  }
  const add = (spec: KafkaTopicSpec) => {
    if (typeof spec.topic !== 'string' || !TOPIC_RE.test(spec.topic)) {
      throw new ConfigurationError(`ensureKafkaTopics: invalid topic ${JSON.stringify(String(spec.topic))}`);
    }
    const partitions = spec.partitions ?? dp;
    const replicas = spec.replicas ?? dr;
    if (!Number.isInteger(partitions) || partitions < 1 || !Number.isInteger(replicas) || replicas < 1) {
      throw new ConfigurationError(`ensureKafkaTopics: ${spec.topic}: partitions and replicas must be >= 1`);
    }
    specs.set(spec.topic, { topic: spec.topic, partitions, replicas, configs: spec.configs });
  };
  for (const t of options.topics) {
    const spec = typeof t === 'string' ? { topic: t } : t;
    add(spec);
    if (options.deadLetterTopic) add({ ...spec, topic: options.deadLetterTopic(spec.topic) });
  }
  const admin = new Admin({
    ...(options.clientOptions ?? {}),
    clientId: options.clientId ?? 'cqrs-ts-admin',
    bootstrapBrokers: assertBrokers(options.brokers, 'ensureKafkaTopics'),
  });
  try {
    const existing = new Set(await admin.listTopics());
    const created: string[] = [];
    for (const spec of specs.values()) {
      if (existing.has(spec.topic)) continue;
      try {
        await admin.createTopics({
          topics: [spec.topic],
          partitions: spec.partitions,
          replicas: spec.replicas,
          configs: Object.entries(spec.configs ?? {}).map(([name, value]) => ({ name, value })),
        });
        created.push(spec.topic);
      } catch (error) {
        if (!hasKafkaErrorCode(error, 'TOPIC_ALREADY_EXISTS')) throw error;
      }
    }
    return created;
  } catch (cause) {
    if (cause instanceof ConfigurationError) throw cause;
    const e = classifyKafkaError(cause, 'ensureKafkaTopics');
    // a refused declaration is the topology's fault; an unreachable cluster stays what it is
    throw e.scope === 'destination'
      ? e
      : new BrokerError('topology', e.message, {
          cause,
          ...(e.nativeCode !== undefined ? { nativeCode: e.nativeCode } : {}),
        });
  } finally {
    await admin.close().catch(() => undefined);
  }
}
