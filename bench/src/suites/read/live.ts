/**
 * Live fan-out case of the `read` suite: 1,000 live queries of one document in one process, each answered again
 * after every applied update, against a hand-written fan-out (one change-feed listener calling a Set of 1,000
 * callbacks that each run the same query). Both apply the same events through the same in-memory runner.
 */
import {
  createDocumentReader,
  createInMemoryEventStore,
  createInMemoryOutboxStore,
  createInMemoryProjectionStore,
  createProjectionRunner,
  defineDocumentProjection,
  defineEvent,
  liveQuery,
} from '@cqrs-ts/core';

const Bumped = defineEvent('bench.live-bumped').withPayload<{ id: string }>();

/** Updates delivered per second to `subscribers` subscribers over `updates` updates (after `warmup` ones). */
export async function measureFanOut(
  variant: 'live' | 'callbacks',
  subscribers: number,
  updates: number,
  warmup: number,
): Promise<number> {
  const outbox = createInMemoryOutboxStore();
  const log = createInMemoryEventStore({ outbox });
  const store = createInMemoryProjectionStore();
  const counter = defineDocumentProjection<{ count: number }>({
    name: 'bench-live',
    events: [Bumped],
    documentId: (e) => (e.payload as { id: string }).id,
    evolve: (doc) => ({ count: (doc?.count ?? 0) + 1 }),
  });
  const runner = createProjectionRunner({ log, store, projections: [counter], pollMs: 60_000 });
  const docs = createDocumentReader(store, counter);
  const query = async () => (await docs.get('o-1'))?.count ?? 0;
  await outbox.transaction((tx) => outbox.append(tx, [Bumped.create({ id: 'o-1' })]));
  await runner.catchUp();

  let delivered = 0;
  let target = 0;
  let reached: (() => void) | undefined;
  const count = () => {
    if (++delivered >= target && reached !== undefined) {
      const r = reached;
      reached = undefined;
      r();
    }
  };
  const until = (n: number) =>
    new Promise<void>((resolve) => {
      target = n;
      if (delivered >= n) resolve();
      else reached = resolve;
    });

  const abort = new AbortController();
  const loops: Promise<void>[] = [];
  if (variant === 'live') {
    for (let i = 0; i < subscribers; i++) {
      loops.push(
        (async () => {
          for await (const _ of liveQuery({ runner, projection: 'bench-live', query, signal: abort.signal }))
            count();
        })(),
      );
    }
  } else {
    const callbacks = new Set<() => Promise<void>>();
    for (let i = 0; i < subscribers; i++) {
      callbacks.add(async () => {
        await query();
        count();
      });
    }
    runner.subscribe('bench-live', () => {
      for (const cb of callbacks) void cb();
    });
    // the first answer, as a live query gives it
    for (const cb of callbacks) void cb();
  }
  await until(subscribers);

  const update = async (rounds: number) => {
    for (let u = 0; u < rounds; u++) {
      const next = delivered + subscribers;
      await outbox.transaction((tx) => outbox.append(tx, [Bumped.create({ id: 'o-1' })]));
      await runner.catchUp();
      await until(next);
    }
  };
  await update(warmup);
  const started = performance.now();
  await update(updates);
  const seconds = (performance.now() - started) / 1000;
  abort.abort(); // wakes every live query, which then ends
  await Promise.all(loops);
  await runner.stop();
  return (updates * subscribers) / seconds;
}
