/**
 * The recovery agent: recovery passes in the background with a heartbeat per pass; a pass stuck on a store
 * that never answers turns readiness red within two intervals.
 */
import { createHealth, createInMemorySagaStore, loopHealth } from '@cqrs-ts/core';
import type { SagaStore } from '@cqrs-ts/core/spi';
import { createSagaRunner, defineSaga, sagaContext } from '@cqrs-ts/saga';
import { describe, expect, it } from 'vitest';
import { waitFor } from './support.ts';

const C = sagaContext<{ n: number }>();
const saga = defineSaga({ name: 'agent-demo', context: C, steps: [C.step({ id: 'one', act: () => 1 })] });
const INTERVAL = 100;

describe('saga recovery agent', () => {
  it('beats once per pass; a pass stuck on the store turns readiness red within two intervals', async () => {
    const inner = createInMemorySagaStore();
    const frozen = { on: false, at: 0 };
    const store: SagaStore = {
      ...inner,
      capabilities: inner.capabilities,
      findRecoverable: (q) => {
        if (!frozen.on) return inner.findRecoverable(q);
        frozen.at = Date.now();
        return new Promise<never>(() => {});
      },
    };
    const runner = createSagaRunner({ store, sagas: [saga] });
    const agent = runner.startRecovery({ intervalMs: INTERVAL });
    const health = createHealth({ components: [loopHealth('saga-recovery', agent)] });
    try {
      await waitFor(() => agent.heartbeat().cycles >= 2, 5000, 'two passes');
      expect(agent.lastReport?.found).toBe(0);
      expect((await health.ready()).status).toBe('pass');
      frozen.on = true;
      await waitFor(() => frozen.at > 0, 5000, 'a pass entered the frozen store');
      let output: string | undefined;
      await waitFor(
        async () => {
          const report = await health.ready();
          output = report.checks['saga-recovery']?.[0]?.output;
          return report.status === 'fail';
        },
        5000,
        'readiness red',
      );
      expect(Date.now() - frozen.at).toBeLessThanOrEqual(2 * INTERVAL + 150); // + latency of noticing on a loaded machine;
      expect(output).toContain('no heartbeat');
    } finally {
      health.close();
      frozen.on = false;
      void agent.stop();
    }
  });

  it('stop() ends the loop; a stopped agent is not ready', async () => {
    const runner = createSagaRunner({ store: createInMemorySagaStore(), sagas: [saga] });
    const agent = runner.startRecovery({ intervalMs: 10_000 });
    await waitFor(() => agent.heartbeat().cycles >= 1, 5000, 'first pass');
    await agent.stop();
    const result = await loopHealth('saga-recovery', agent).check(new AbortController().signal);
    expect(result).toMatchObject({ status: 'fail', output: 'loop not running' });
    expect(() => runner.startRecovery({ intervalMs: 0 })).toThrow(/intervalMs/);
  });
});
