import {
  ConfigurationError,
  createDocumentReader,
  createInMemoryEventStore,
  createInMemoryOutboxStore,
  createInMemoryProjectionStore,
  createProjectionFollower,
  createProjectionRunner,
  defineDocumentProjection,
  defineEvent,
  type LiveItem,
  liveQuery,
} from '@cqrs-ts/core';
import { describe, expect, it } from 'vitest';

const Bumped = defineEvent('live.bumped').withPayload<{ id: string }>();
const tick = () => new Promise<void>((resolve) => setImmediate(resolve));

function world(follow = false) {
  const outbox = createInMemoryOutboxStore();
  const log = createInMemoryEventStore({ outbox });
  const memory = createInMemoryProjectionStore();
  // Each batch's transaction spans event-loop turns, as a database's would: a client can subscribe meanwhile.
  const store: typeof memory = {
    ...memory,
    transaction: (work) =>
      memory.transaction(async (tx) => {
        for (let k = 0; k < 3; k++) await tick();
        return work(tx);
      }),
  };
  const counter = defineDocumentProjection<{ count: number }>({
    name: 'live-counter',
    events: [Bumped],
    documentId: (e) => (e.payload as { id: string }).id,
    evolve: (doc) => ({ count: (doc?.count ?? 0) + 1 }),
  });
  // Another process's view: a follower fed with what the runner applied (as a broadcast consumer would).
  const follower = createProjectionFollower({ store, projection: 'live-counter' });
  const runner = createProjectionRunner({
    log,
    store,
    projections: [counter],
    pollMs: 1,
    ...(follow ? { onApplied: async (events) => void (await Promise.all(events.map(follower.handle))) } : {}),
  });
  const docs = createDocumentReader(store, counter);
  const bump = (id: string) => outbox.transaction((tx) => outbox.append(tx, [Bumped.create({ id })]));
  const watch = (id: string, after?: string) =>
    liveQuery({
      runner: follow ? follower : runner,
      projection: 'live-counter',
      query: async () => (await docs.get(id))?.count ?? 0,
      relevant: (e) => (e.payload as { id: string }).id === id,
      ...(after !== undefined ? { after } : {}),
    });
  return { runner, bump, watch, follower, store };
}

describe('live queries', () => {
  it.each([
    ['the runner', false],
    ['a follower in another process', true],
  ])(
    'through %s: answers at once, then after each relevant change, with increasing positions; resumes after a position',
    async (_, follow) => {
      const w = world(follow);
      await w.bump('a');
      await w.runner.catchUp();
      const it = w.watch('a')[Symbol.asyncIterator]();
      const first = (await it.next()).value as LiveItem<number>;
      expect(first.value).toBe(1);
      await w.bump('b');
      await w.bump('a');
      await w.runner.catchUp();
      const second = (await it.next()).value as LiveItem<number>;
      expect(second.value).toBe(2);
      expect(second.position > first.position).toBe(true);
      await it.return(undefined);
      // Resuming after the last position sent: nothing again until a newer change.
      const resumed = w.watch('a', second.position)[Symbol.asyncIterator]();
      const next = resumed.next();
      await w.bump('a');
      await w.runner.catchUp();
      expect(((await next).value as LiveItem<number>).value).toBe(3);
      await resumed.return(undefined);
    },
  );

  it.each([
    ['the runner', false],
    ['a follower in another process', true],
  ])(
    '10,000 trials of an update committing while a client of %s subscribes: 0 missed, 0 duplicated',
    async (_, follow) => {
      let missed = 0;
      let duplicated = 0;
      for (let trial = 0; trial < 10_000; trial++) {
        const w = world(follow);
        const id = `d${trial}`;
        // The update commits and is applied at a random point around the subscription: before it, while the
        // client subscribes, or after its first answer.
        const lead = trial % 8;
        const update = (async () => {
          for (let k = lead % 4; k > 0; k--) await tick();
          await w.bump(id);
          await w.runner.catchUp();
        })();
        if (lead >= 4) for (let k = lead - 4; k >= 0; k--) await tick();
        const it = w.watch(id)[Symbol.asyncIterator]();
        const seen: LiveItem<number>[] = [(await it.next()).value as LiveItem<number>];
        await update;
        if (seen[0]!.value === 0) {
          // Not in the first answer: it must come next.
          const next = await Promise.race([
            it.next(),
            w.runner
              .catchUp()
              .then(tick)
              .then(() => 'none' as const),
          ]);
          if (next === 'none') {
            const late = await Promise.race([
              it.next(),
              tick()
                .then(tick)
                .then(() => 'none' as const),
            ]);
            if (late === 'none') missed++;
            else seen.push(late.value as LiveItem<number>);
          } else seen.push(next.value as LiveItem<number>);
        }
        // Nothing more may come without a new change (a repeat would come now); then a second update comes next.
        const extra = it.next();
        const early = await Promise.race([
          extra,
          tick()
            .then(tick)
            .then(tick)
            .then(() => 'none' as const),
        ]);
        if (early !== 'none') duplicated++;
        await w.bump(id);
        await w.runner.catchUp();
        const after = (early === 'none' ? (await extra).value : (await it.next()).value) as LiveItem<number>;
        if (after.value !== 2) missed++;
        if (seen.some((s, i) => i > 0 && s.position <= seen[i - 1]!.position) || seen.at(-1)!.value !== 1)
          missed++;
        await it.return(undefined);
      }
      expect({ missed, duplicated }).toEqual({ missed: 0, duplicated: 0 });
    },
    120_000,
  );

  it('a follower reads again when a batch commits during its read, up to maxReadAttempts', async () => {
    let checkpoint = '1';
    let row = 'old';
    const store = { load: async () => ({ position: checkpoint }) as never };
    const follower = createProjectionFollower({ store, projection: 'p', maxReadAttempts: 2 });
    let commits = 1;
    // the first read sees the old row, then a batch commits (row and checkpoint together) before the read ends
    const read = () => {
      const seen = row;
      if (commits-- > 0) {
        row = 'new';
        checkpoint = '2';
      }
      return seen;
    };
    expect(await follower.readAt('p', read)).toEqual({ position: '2', value: 'new' });
    // a batch commits during every read
    const busy = () => {
      checkpoint = `${Number(checkpoint) + 1}`;
      return row;
    };
    await expect(follower.readAt('p', busy)).rejects.toThrow('batches kept committing');
  });

  it('a follower refuses bad options and another projection’s name', () => {
    const store = createInMemoryProjectionStore();
    expect(() => createProjectionFollower({ store: {} as never, projection: 'p' })).toThrow(
      ConfigurationError,
    );
    expect(() => createProjectionFollower({ store, projection: '' })).toThrow(ConfigurationError);
    expect(() => createProjectionFollower({ store, projection: 'p', maxReadAttempts: 0 })).toThrow(
      ConfigurationError,
    );
    const follower = createProjectionFollower({ store, projection: 'p' });
    expect(() => follower.subscribe('q', () => {})).toThrow(ConfigurationError);
  });
});
