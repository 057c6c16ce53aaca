/**
 * Shared by the SQL cases of the `saga` suite (`postgres.ts`, `mariadb.ts`, `sqlite.ts`): the no-op 3-step saga,
 * the measuring loop and the `saga` variant through the runner of `@cqrs-ts/saga`.
 */
import type { SagaStore } from '@cqrs-ts/core/spi';
import { createSagaRunner, defineSaga, sagaContext } from '@cqrs-ts/saga';

const now = () => performance.now();

/** Sagas per second of an awaited `op` running one saga: 500 ms warm-up, then the median of 5 samples of 600 ms. */
export async function sagasPerSecond(op: () => Promise<void>): Promise<number> {
  const warmEnd = now() + 500;
  while (now() < warmEnd) await op();
  const samples: number[] = [];
  for (let s = 0; s < 5; s++) {
    const start = now();
    let n = 0;
    while (now() - start < 600) {
      await op();
      n++;
    }
    samples.push((n * 1000) / (now() - start));
  }
  samples.sort((a, b) => a - b);
  return samples[2]!;
}

const C = sagaContext<{ orderId: string }>();

/** Three steps that do nothing (and record nothing). */
export const noopSaga = defineSaga({
  name: 'bench-noop',
  context: C,
  steps: [
    C.step({ id: 'reserve', act: () => undefined, compensate: () => undefined }),
    C.step({ id: 'charge', act: () => undefined, compensate: () => undefined }),
    C.step({ id: 'ship', act: () => undefined }),
  ],
});

/** The `saga` variant: 3-step no-op sagas, one after another, through the saga runner over `store`. */
export async function runnerRate(store: SagaStore): Promise<number> {
  const runner = createSagaRunner({ store, sagas: [noopSaga] });
  let i = 0;
  const op = async () => {
    const outcome = await runner.run(noopSaga, { orderId: `o-${i++}` });
    if (outcome.status !== 'completed') throw new Error(`saga ended ${outcome.status}`);
  };
  return sagasPerSecond(op);
}

/** A 36-character id like the runner's UUID v7 ids, for the raw loops. */
export const rawId = (n: number) => `00000000-0000-7000-8000-${n.toString(16).padStart(12, '0')}`;
/** The context and step result texts the raw loops write (what the runner writes for the no-op saga). */
export const RAW_CONTEXT = '{"orderId":"o-1"}';
