import { defineConfig } from 'vitest/config';
import reliability from './vitest.reliability.config.ts';

/**
 * `npm run soak`: the orders service load tests for 30 s (examples/orders/test/load.reliability.test.ts), and the
 * reliability suite's long-outage tests with a 300 s outage (NATS, Redis, RabbitMQ, one after
 * the other: about 30 to 40 minutes), outside CI's time budget.
 */
export default defineConfig({
  ...reliability,
  test: {
    ...reliability.test,
    env: { ...reliability.test?.env, CQRS_OUTAGE_MS: '300000', ORDERS_LOAD_SECONDS: '30' },
    testNamePattern: /outage of \d+ s|load for \d+ s/,
  },
});
