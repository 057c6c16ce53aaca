/**
 * `memory saga`: 3-step no-op sagas per second through the cqrs-ts saga runner over the in-memory store.
 * `memory raw`: the same store operations one such saga needs (create, then one guarded commit per step with its
 * log row; the last one completes and releases the lease), called directly, as sagas per second.
 */
import { createInMemorySagaStore } from '@cqrs-ts/core';
import { type SagaLogEntryInput, uuidv7 } from '@cqrs-ts/core/spi';
import { createSagaRunner, defineSaga, sagaContext } from '@cqrs-ts/saga';
import type { Metrics } from '../../lib/types.ts';
import { usPerOp } from '../outbox/common.ts';

type Ctx = { orderId: string; n: number };
const C = sagaContext<Ctx>();
const noop = () => undefined;
const saga = defineSaga({
  name: 'bench',
  context: C,
  steps: [C.step({ id: 'a', act: noop }), C.step({ id: 'b', act: noop }), C.step({ id: 'c', act: noop })],
});

export async function run(variant: string): Promise<Metrics> {
  // A fresh store per sample keeps memory flat; the cost of creating it is negligible.
  let store = createInMemorySagaStore();
  let runs = 0;
  const fresh = () => {
    if (++runs % 10_000 === 0) store = createInMemorySagaStore();
  };
  if (variant === 'saga') {
    let runner = createSagaRunner({ store, leaseMs: 30_000 });
    const us = await usPerOp(async () => {
      fresh();
      if (runs % 10_000 === 0) runner = createSagaRunner({ store, leaseMs: 30_000 });
      await runner.run(saga, { orderId: 'o-1', n: runs });
    });
    return { per_s: 1e6 / us };
  }
  if (variant === 'raw') {
    const owner = uuidv7();
    const row = (stepId: string, slot: number, now: number): SagaLogEntryInput => ({
      stepId,
      slot,
      action: 'act',
      status: 'completed',
      attempts: 1,
      result: 'null',
      error: null,
      startedAt: now,
      at: now,
    });
    const us = await usPerOp(async () => {
      fresh();
      const id = uuidv7();
      const now = Date.now();
      const context = JSON.stringify({ orderId: 'o-1', n: runs });
      await store.create({
        id,
        name: 'bench',
        definitionVersion: 1,
        context,
        owner,
        now,
        leaseMs: 30_000,
        deadlineAt: null,
      });
      let version = 1;
      const ids = ['a', 'b', 'c'];
      for (let slot = 0; slot < 3; slot++) {
        const last = slot === 2;
        version = await store.commit({
          id,
          owner,
          expectedVersion: version,
          now,
          status: last ? 'completed' : 'running',
          context,
          cursor: slot + 1,
          error: null,
          log: [row(ids[slot]!, slot, now)],
          lease: last ? 'release' : 30_000,
        });
      }
    });
    return { per_s: 1e6 / us };
  }
  throw new Error(`unknown variant ${variant}`);
}
