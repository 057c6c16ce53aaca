import { ConfigurationError, createInMemorySagaStore } from '@cqrs-ts/core';
import {
  createSagaRunner,
  defineSaga,
  SagaNotFoundError,
  type SagaProgress,
  sagaContext,
} from '@cqrs-ts/saga';
import { describe, expect, it } from 'vitest';
import { deferred } from './support.ts';

type Ctx = { orderId: string };
const C = sagaContext<Ctx>();

/** Two steps; the second waits for `gate` and fails when `fail` is set. */
function gatedSaga(gate: Promise<void>, fail = false) {
  return defineSaga({
    name: 'watched',
    version: 1,
    context: C,
    steps: [
      C.step({ id: 'reserve', act: async () => ({ held: 2 }), compensate: async () => {} }),
      C.step({
        id: 'charge',
        act: async () => {
          await gate;
          if (fail) throw new Error('declined');
          return { paid: true };
        },
      }),
    ],
  });
}

const brief = (p: SagaProgress) =>
  p.kind === 'step' ? `${p.action}:${p.stepId}:${p.status}` : `state:${p.status}:${p.cursor}`;

describe('SagaRunner.watch', () => {
  it('yields each commit of this runner as it happens and ends when the saga is final', async () => {
    const runner = createSagaRunner({ store: createInMemorySagaStore() });
    const gate = deferred();
    const done = runner.run(gatedSaga(gate.promise), { orderId: 'o-1' }, { id: 'o-1' });
    const feed = runner.watch('o-1')[Symbol.asyncIterator]();
    const seen: string[] = [];
    // wait on the feed itself until the first step is recorded: the second one cannot finish before the gate
    while (!seen.includes('act:reserve:completed')) {
      const next = await feed.next();
      seen.push(brief(next.value as SagaProgress));
    }
    gate.resolve();
    for (let next = await feed.next(); !next.done; next = await feed.next()) seen.push(brief(next.value));
    await done;
    expect(seen.at(-2)).toBe('act:charge:completed');
    expect(seen.at(-1)).toBe('state:completed:2');
    expect(seen.filter((s) => s.startsWith('act:'))).toEqual([
      'act:reserve:completed',
      'act:charge:completed',
    ]);
  });

  it('resumes after a sequence: earlier rows are not repeated, the current state is', async () => {
    const runner = createSagaRunner({ store: createInMemorySagaStore() });
    const gate = deferred();
    gate.resolve();
    await runner.run(gatedSaga(gate.promise), { orderId: 'o-2' }, { id: 'o-2' }).catch(() => {});
    const all: SagaProgress[] = [];
    for await (const p of runner.watch('o-2')) all.push(p);
    const first = all.find((p) => p.kind === 'step')!;
    const resumed: SagaProgress[] = [];
    for await (const p of runner.watch('o-2', { after: first.seq })) resumed.push(p);
    expect(resumed.map(brief)).toEqual(['act:charge:completed', 'state:completed:2']);
    expect(resumed.at(-1)!.seq).toBe(all.at(-1)!.seq);
  });

  it('shows the compensation of a failed saga, with results and errors parsed', async () => {
    const runner = createSagaRunner({ store: createInMemorySagaStore() });
    const gate = deferred();
    gate.resolve();
    await runner.run(gatedSaga(gate.promise, true), { orderId: 'o-3' }, { id: 'o-3' }).catch(() => {});
    const all: SagaProgress[] = [];
    for await (const p of runner.watch('o-3')) all.push(p);
    expect(all.map(brief)).toEqual([
      'act:reserve:completed',
      'act:charge:failed',
      'compensate:reserve:completed',
      'state:compensated:1',
    ]);
    expect(all[0]).toMatchObject({ result: { held: 2 }, error: null });
    expect(all[1]).toMatchObject({ error: expect.objectContaining({ message: 'declined' }) });
  });

  it('ends when the signal aborts, and refuses an unknown saga and a bad sequence', async () => {
    const runner = createSagaRunner({ store: createInMemorySagaStore() });
    const gate = deferred();
    const done = runner.run(gatedSaga(gate.promise), { orderId: 'o-4' }, { id: 'o-4' });
    const stop = new AbortController();
    const feed = runner.watch('o-4', { signal: stop.signal })[Symbol.asyncIterator]();
    let next = await feed.next();
    while (!(next.value?.kind === 'state' && next.value.cursor === 1)) next = await feed.next();
    const waiting = feed.next();
    stop.abort();
    await expect(waiting).resolves.toEqual({ done: true, value: undefined });
    gate.resolve();
    await done;
    await expect(runner.watch('nope')[Symbol.asyncIterator]().next()).rejects.toBeInstanceOf(
      SagaNotFoundError,
    );
    await expect(runner.watch('o-4', { after: -1 })[Symbol.asyncIterator]().next()).rejects.toBeInstanceOf(
      ConfigurationError,
    );
  });
});
