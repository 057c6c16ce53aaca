/** The saga engine publishes `cqrs-ts:saga.step` for each run of an act or a compensation. */
import { tracingChannel } from 'node:diagnostics_channel';
import { createInMemorySagaStore, type SagaStepTraceContext, TRACING_CHANNELS } from '@cqrs-ts/core';
import { createSagaRunner, defineSaga, SagaFailedError, sagaContext } from '@cqrs-ts/saga';
import { describe, expect, it } from 'vitest';

const C = sagaContext<{ n: number }>();

describe('cqrs-ts:saga.step', () => {
  it('reports each act (fallbacks marked) and each compensation with the saga, its id and the outcome', async () => {
    const saga = defineSaga({
      name: 'traced',
      context: C,
      steps: [
        C.step({
          id: 'charge-card',
          act: () => Promise.reject(new Error('card declined')),
          fallback: { id: 'charge-invoice', act: () => 'inv-1', compensate: () => {} },
        }),
        C.step({ id: 'ship', act: () => Promise.reject(new Error('no truck')) }),
      ],
    });
    const seen: { event: string; context: SagaStepTraceContext }[] = [];
    const on = (event: string) => (context: SagaStepTraceContext) =>
      seen.push({ event, context: { ...context } });
    const handlers = {
      start: on('start'),
      end() {},
      asyncStart() {},
      asyncEnd: on('asyncEnd'),
      error: on('error'),
    };
    const channel = tracingChannel<unknown, SagaStepTraceContext>(TRACING_CHANNELS.sagaStep);
    channel.subscribe(handlers);
    let error: unknown;
    try {
      error = await createSagaRunner({ store: createInMemorySagaStore() })
        .run(saga, { n: 0 })
        .catch((e: unknown) => e);
    } finally {
      channel.unsubscribe(handlers);
    }
    expect(error).toBeInstanceOf(SagaFailedError);
    const starts = seen.filter((s) => s.event === 'start').map((s) => s.context);
    expect(starts.map((c) => [c.step, c.action, c.fallback])).toEqual([
      ['charge-card', 'act', false],
      ['charge-invoice', 'act', true],
      ['ship', 'act', false],
      ['charge-invoice', 'compensate', false],
    ]);
    expect(starts.every((c) => c.saga === 'traced' && c.sagaId === (error as SagaFailedError).sagaId)).toBe(
      true,
    );
    expect(seen.filter((s) => s.event === 'error').map((s) => s.context.step)).toEqual([
      'charge-card',
      'ship',
    ]);
    expect(seen.filter((s) => s.event === 'asyncEnd')).toHaveLength(4);
  });
});
