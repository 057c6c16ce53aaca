import { parseKafkaBrokers } from '@cqrs-ts/kafka';
import { expect, it } from 'vitest';
import { runExample, uniqueSuffix } from '../../core/test/support/services.ts';

const BROKERS = parseKafkaBrokers(process.env.KAFKA_BROKERS);
if (BROKERS.length === 0) {
  console.warn('SKIP the Kafka README example: KAFKA_BROKERS is not set (no Kafka broker on this machine)');
}

it.skipIf(BROKERS.length === 0)(
  "the README's example runs: outbox, relay, Kafka, consumer group",
  async () => {
    const out = await runExample('packages/kafka', 'test/readme/quick-start.ts', {
      KAFKA_BROKERS: BROKERS.join(','),
      KAFKA_TOPIC: `readme-${uniqueSuffix}`,
    });
    expect(out.split('\n')).toEqual(['placed o-1', '']);
  },
);
