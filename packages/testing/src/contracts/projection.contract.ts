/**
 * Contract of projections over a storage adapter: the projection store (checkpoints with a lease, documents,
 * parked events) under the core runner, inline projections in the adapter's unit of work, poison events,
 * status and lag, rebuilds in place and side by side, concurrent writers read through a projection, and a
 * SIGKILLed runner taken over by another with no event skipped or applied twice.
 * @module
 */
import type { ChildProcess } from 'node:child_process';
import {
  type AnyEvent,
  type AnyProjection,
  consistencyToken,
  createDocumentReader,
  createInlineProjections,
  createMediator,
  createProjectionRunner,
  defineCommand,
  defineDocumentProjection,
  defineEvent,
  defineProjection,
  type EventLog,
  handle,
  type PoisonPolicy,
  type ProjectionRunnerOptions,
  type UnitOfWork,
} from '@cqrs-ts/core';
import type { InlineProjector, ProjectionStore } from '@cqrs-ts/core/spi';
import { expect } from 'vitest';
import { waitFor } from '../wait-for.ts';
import type { ContractEventStore } from './event-store.contract.ts';
import { describeHarness } from './harness.ts';

/** A counter table per test: one row per event id, `n` bumped by each apply (so a doubled event shows). */
export interface ProjectionCounters<TTx> {
  /** Creates the table if missing and empties it. */
  create(table: string): Promise<void>;
  /** Upserts the row of `id` with `n = n + 1`, in `tx`. */
  bump(tx: TTx, table: string, id: string): Promise<void>;
  read(table: string): Promise<ReadonlyMap<string, number>>;
  /** Deletes every row, in `tx` (a batch projection's `reset`). */
  clear(tx: TTx, table: string): Promise<void>;
}

/** What a storage adapter provides to run {@link describeProjectionContract}. */
export interface ProjectionHarness<TTx> {
  /** The event log (with its outbox) over the harness's tables. */
  eventStore(): ContractEventStore<TTx>;
  /** A projection store over the harness's tables. */
  projectionStore(): ProjectionStore<TTx>;
  /** Runs `fn` in a transaction and commits. */
  tx<T>(fn: (tx: TTx) => Promise<T>): Promise<T>;
  readonly counters: ProjectionCounters<TTx>;
  /** The adapter's unit of work over the event store's outbox, with these inline projections. */
  unitOfWork(store: ContractEventStore<TTx>, projections: InlineProjector<TTx>): UnitOfWork<unknown>;
  /** `true` when two transactions can be open at once. */
  readonly concurrentTransactions: boolean;
  /**
   * Starts {@link runCounterProjectionChild} in a child process over the harness's tables, with these
   * arguments in `CQRS_PROJECTION_CHILD` (JSON); its stdout prints `ready` once it holds the lease.
   */
  spawnRunner?(args: CounterChildArgs): ChildProcess;
  reset(): Promise<void>;
  close(): Promise<void>;
}

/** Arguments of {@link runCounterProjectionChild}. */
export interface CounterChildArgs {
  readonly table: string;
  readonly leaseMs: number;
  readonly batchSize: number;
  /** Pause inside each event's apply, so the parent's kill lands while a batch's transaction is open. */
  readonly pauseMs: number;
}

const Added = defineEvent('contract.projection-added').withPayload<{ id: string; n: number }>();
const Removed = defineEvent('contract.projection-removed').withPayload<{ id: string }>();
const Noise = defineEvent('contract.projection-noise').withPayload<{ n: number }>();

const added = (id: string, n: number) => Added.create({ id, n }) as AnyEvent;
const removed = (id: string) => Removed.create({ id }) as AnyEvent;
const noise = (n: number) => Noise.create({ n }) as AnyEvent;

interface Tally {
  readonly total: number;
  readonly count: number;
}

const tally = (name = 'tally', version = 1, onPoison?: PoisonPolicy) =>
  defineDocumentProjection<Tally>({
    name,
    version,
    events: [Added, Removed],
    ...(onPoison !== undefined ? { onPoison } : {}),
    documentId: (e) => (e.payload as { id: string }).id,
    evolve: (doc, e) => {
      if (e.type === Removed.type) return null;
      const n = (e.payload as { n: number }).n * version;
      return { total: (doc?.total ?? 0) + n, count: (doc?.count ?? 0) + 1 };
    },
  });

/** The counter projection of the SIGKILL test and its child: one counter row per `Added` event id. */
export function counterProjection<TTx>(
  table: string,
  counters: Pick<ProjectionCounters<TTx>, 'bump' | 'clear'>,
  options: {
    readonly name?: string;
    readonly fail?: (e: AnyEvent) => boolean;
    readonly onPoison?: PoisonPolicy;
    readonly pauseMs?: number;
  } = {},
) {
  const pause = options.pauseMs ?? 0;
  return defineProjection<TTx>({
    name: options.name ?? 'counter',
    events: [Added],
    ...(options.onPoison !== undefined ? { onPoison: options.onPoison } : {}),
    async apply(e, tx) {
      await counters.bump(tx, table, e.metadata.requestId!);
      if (pause > 0) await new Promise((resolve) => setTimeout(resolve, pause));
      if (options.fail?.(e)) throw new Error(`refused ${(e.payload as { id: string }).id}`);
    },
    reset: (tx) => counters.clear(tx, table),
  });
}

/**
 * The child process side of the SIGKILL test: runs the counter projection over `log` and `store` until it is
 * killed, printing `ready` once it holds the lease.
 */
export async function runCounterProjectionChild<TTx>(
  log: EventLog,
  store: ProjectionStore<TTx>,
  counters: Pick<ProjectionCounters<TTx>, 'bump' | 'clear'>,
  args: CounterChildArgs,
): Promise<never> {
  const owner = `child-${process.pid}`;
  const runner = createProjectionRunner<TTx>({
    log,
    store,
    projections: [counterProjection(args.table, counters, { pauseMs: args.pauseMs })],
    owner,
    leaseMs: args.leaseMs,
    batchSize: args.batchSize,
    pollMs: 5,
  });
  runner.start();
  await waitFor(async () => (await store.load('counter', 1))?.leaseOwner === owner, 10_000, 'the lease');
  process.stdout.write('ready\n');
  return new Promise<never>(() => {});
}

const rejects = async (promise: Promise<unknown>): Promise<unknown> => {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error('expected a rejection');
};

/**
 * Registers the projection contract for an adapter.
 * @example
 * describeProjectionContract('postgres', async () => harness);
 */
export function describeProjectionContract<TTx>(
  name: string,
  setup: () => Promise<ProjectionHarness<TTx> | undefined>,
): void {
  /** Appends in one transaction, then waits until a reader sees the events (a log may hold readers back). */
  const append = async (h: ProjectionHarness<TTx>, log: ContractEventStore<TTx>, events: AnyEvent[]) => {
    await h.tx((tx) => log.outbox.append(tx, events));
    await visible(log, events);
  };
  const visible = async (log: EventLog, events: readonly AnyEvent[]) => {
    const wanted = new Set(events.map((e) => e.metadata.requestId!));
    await waitFor(
      async () => {
        let after = '0';
        let found = 0;
        for (;;) {
          const batch = await log.read({ after, limit: 10_000 });
          for (const e of batch.entries) if (wanted.has(e.id)) found++;
          if (batch.entries.length < 10_000) return found === wanted.size;
          after = batch.position;
        }
      },
      20_000,
      'the appended events to be readable',
    );
  };
  const runnerOf = (
    log: ContractEventStore<TTx>,
    store: ProjectionStore<TTx>,
    projections: AnyProjection<TTx>[],
    extra: Partial<ProjectionRunnerOptions<TTx>> = {},
  ) =>
    createProjectionRunner<TTx>({
      log,
      store,
      projections,
      pollMs: 5,
      retry: { attempts: 3, backoff: { initialMs: 1, maxMs: 5 } },
      ...extra,
    });
  const docs = async (store: ProjectionStore<TTx>, projection: ReturnType<typeof tally>, ids: string[]) =>
    Object.fromEntries(await createDocumentReader(store, projection).getMany(ids));

  describeHarness(`${name} projection contract`, setup, (test) => {
    test('builds documents from the log, each stored as JSON with a version; null deletes', async (h) => {
      const log = h.eventStore();
      const store = h.projectionStore();
      const p = tally();
      await append(h, log, [added('a', 1), added('b', 10), noise(1), added('a', 2)]);
      await append(h, log, [removed('b'), added('c', 5)]);
      const runner = runnerOf(log, store, [p]);
      expect((await runner.catchUp()).tally).toBe(5);
      expect(await docs(store, p, ['a', 'b', 'c'])).toEqual({
        a: { total: 3, count: 2 },
        c: { total: 5, count: 1 },
      });
      const stored = await store.readDocuments(undefined, { name: 'tally', version: 1 }, ['a', 'c']);
      expect(stored.get('a')?.version).toBe(2);
      expect(stored.get('c')?.version).toBe(1);
      // Caught up: nothing more to apply, and the documents do not change when asked again.
      expect((await runner.catchUp()).tally).toBe(0);
      expect(await docs(store, p, ['a', 'c'])).toEqual({
        a: { total: 3, count: 2 },
        c: { total: 5, count: 1 },
      });
    });

    test('a batch projection writes with the runner transaction: a failed event rolls the batch back, the retry applies each event once', async (h) => {
      const log = h.eventStore();
      const store = h.projectionStore();
      await h.counters.create('pc_retry');
      let failures = 1;
      const p = counterProjection('pc_retry', h.counters, {
        fail: (e) => (e.payload as { id: string }).id === 'x3' && failures-- > 0,
      });
      const events = Array.from({ length: 6 }, (_, i) => added(`x${i}`, i));
      await append(h, log, events);
      await runnerOf(log, store, [p]).catchUp();
      const rows = await h.counters.read('pc_retry');
      expect(rows.size).toBe(6);
      for (const e of events) expect(rows.get(e.metadata.requestId!)).toBe(1);
    });

    test('stops on a poison event after the retries and reports it (type, id, error); resume retries it', async (h) => {
      const log = h.eventStore();
      const store = h.projectionStore();
      await h.counters.create('pc_poison');
      let broken = true;
      const p = counterProjection('pc_poison', h.counters, {
        fail: (e) => broken && (e.payload as { id: string }).id === 'bad',
      });
      const bad = added('bad', 0);
      await append(h, log, [added('ok1', 1), bad, added('ok2', 2)]);
      const runner = runnerOf(log, store, [p]);
      await runner.catchUp();
      const status = await runner.status('counter');
      expect(status.state).toBe('stopped');
      expect(status.lastError).toMatchObject({
        eventType: Added.type,
        eventId: bad.metadata.requestId,
        outcome: 'stopped',
        attempts: 3,
      });
      expect(status.lastError!.error).toContain('refused bad');
      expect(status.lagEvents).toBe(2);
      expect((await h.counters.read('pc_poison')).size).toBe(1);
      broken = false;
      await runner.resume('counter');
      await runner.catchUp();
      expect((await runner.status('counter')).state).not.toBe('stopped');
      expect([...(await h.counters.read('pc_poison')).values()]).toEqual([1, 1, 1]);
    });

    test('skip and park go on past a poison event; park keeps it for an operator', async (h) => {
      const log = h.eventStore();
      const store = h.projectionStore();
      await h.counters.create('pc_skip');
      const bad = added('bad', 0);
      await append(h, log, [added('ok1', 1), bad, added('ok2', 2)]);
      for (const policy of ['skip', 'park'] as const) {
        const p = counterProjection('pc_skip', h.counters, {
          name: `counter-${policy}`,
          onPoison: policy,
          fail: (e) => (e.payload as { id: string }).id === 'bad',
        });
        const runner = runnerOf(log, store, [p]);
        await runner.catchUp();
        const status = await runner.status(`counter-${policy}`);
        expect(status.state).not.toBe('stopped');
        expect(status.lagEvents).toBe(0);
        expect(status.lastError).toMatchObject({
          eventId: bad.metadata.requestId,
          outcome: policy === 'skip' ? 'skipped' : 'parked',
        });
        const parked = await runner.parked(`counter-${policy}`);
        expect(parked.map((e) => e.eventId)).toEqual(policy === 'park' ? [bad.metadata.requestId] : []);
      }
      // Two projections wrote the two good events; the poison one's writes rolled back each time.
      const rows = await h.counters.read('pc_skip');
      expect(rows.size).toBe(2);
      expect([...rows.values()]).toEqual([2, 2]);
    });

    test('applyBatch writes a batch in one call; a failing batch is applied again one event per call to name the poison event', async (h) => {
      const log = h.eventStore();
      const store = h.projectionStore();
      await h.counters.create('pc_many');
      const calls: number[] = [];
      const p = defineProjection<TTx>({
        name: 'counter-many',
        events: [Added],
        async applyBatch(items, tx) {
          calls.push(items.length);
          for (const { event } of items) {
            if ((event.payload as { id: string }).id === 'bad') throw new Error('refused bad');
            await h.counters.bump(tx, 'pc_many', event.metadata.requestId!);
          }
        },
      });
      const bad = added('bad', 0);
      const good = [added('ok1', 1), added('ok2', 2), added('ok3', 3)];
      await append(h, log, [good[0]!, good[1]!, bad, good[2]!]);
      const runner = runnerOf(log, store, [p], { retry: { attempts: 1 } });
      await runner.catchUp();
      const status = await runner.status('counter-many');
      expect(status.state).toBe('stopped');
      expect(status.lastError).toMatchObject({ eventId: bad.metadata.requestId, attempts: 1 });
      const rows = await h.counters.read('pc_many');
      expect([...rows.keys()].sort()).toEqual([good[0]!, good[1]!].map((e) => e.metadata.requestId).sort());
      expect([...rows.values()]).toEqual([1, 1]);
      expect(calls[0]).toBe(4);
    });

    test('one runner per projection: another is refused while the lease is live, then continues from the checkpoint', async (h) => {
      const log = h.eventStore();
      const store = h.projectionStore();
      await h.counters.create('pc_lease');
      const p = counterProjection('pc_lease', h.counters);
      const a = runnerOf(log, store, [p], { owner: 'runner-a' });
      const b = runnerOf(log, store, [p], { owner: 'runner-b' });
      await append(h, log, [added('1', 1), added('2', 2)]);
      expect((await a.catchUp()).counter).toBe(2);
      await append(h, log, [added('3', 3)]);
      expect((await b.catchUp()).counter).toBe(0);
      expect((await b.status('counter')).owner).toBe('runner-a');
      await a.stop();
      expect((await b.catchUp()).counter).toBe(1);
      expect([...(await h.counters.read('pc_lease')).values()]).toEqual([1, 1, 1]);
    });

    test('a runner whose lease expired and was taken commits nothing (the checkpoint and owner guard each batch)', async (h) => {
      const log = h.eventStore();
      const store = h.projectionStore();
      await h.counters.create('pc_fence');
      const p = counterProjection('pc_fence', h.counters);
      let clockA = Date.now();
      const a = runnerOf(log, store, [p], { owner: 'runner-a', leaseMs: 1_000, now: () => clockA });
      const b = runnerOf(log, store, [p], {
        owner: 'runner-b',
        leaseMs: 1_000,
        now: () => clockA + 5_000,
      });
      await append(h, log, [added('1', 1)]);
      await a.catchUp();
      await append(h, log, [added('2', 2)]);
      expect((await b.catchUp()).counter).toBe(1);
      await append(h, log, [added('3', 3)]);
      // A still believes it holds the lease (its clock did not move): its batch is refused.
      clockA += 1;
      expect((await a.catchUp()).counter).toBe(0);
      expect((await b.catchUp()).counter).toBe(1);
      expect([...(await h.counters.read('pc_fence')).values()]).toEqual([1, 1, 1]);
    });

    test('inline projections apply in the unit of work transaction: visible after the command, gone with a rollback', async (h) => {
      const log = h.eventStore();
      const store = h.projectionStore();
      const p = tally('inline-tally');
      const Add = defineCommand('contract.projection-add').withPayload<{
        id: string;
        n: number;
        fail?: boolean;
      }>();
      const unitOfWork = h.unitOfWork(log, createInlineProjections<TTx>({ store, projections: [p] }));
      const mediator = createMediator({
        behaviors: [unitOfWork],
        handlers: [
          handle(Add, (cmd, ctx) => {
            ctx.emit(Added, { id: cmd.payload.id, n: cmd.payload.n });
            if (cmd.payload.fail === true) throw new Error('refused');
          }),
        ],
      });
      await mediator.send(Add.create({ id: 'i1', n: 4 }));
      await mediator.send(Add.create({ id: 'i1', n: 1 }));
      expect(await docs(store, p, ['i1'])).toEqual({ i1: { total: 5, count: 2 } });
      await rejects(mediator.send(Add.create({ id: 'i2', n: 1, fail: true })));
      expect(await docs(store, p, ['i2'])).toEqual({});
    });

    test('status reports position, head and lag in events and ms; waitFor resolves once the token is applied', async (h) => {
      const log = h.eventStore();
      const store = h.projectionStore();
      const p = tally();
      const runner = runnerOf(log, store, [p]);
      const first = [added('s', 1), added('s', 2), noise(3)];
      await append(h, log, first);
      await waitFor(
        async () => (await runner.status('tally')).lagEvents === 2,
        10_000,
        'the log to show the events',
      );
      const before = await runner.status('tally');
      expect(before).toMatchObject({ position: '0', lagEvents: 2, state: 'idle', lastError: null });
      expect(before.lagMs).toBeGreaterThanOrEqual(0);
      expect(before.head > before.position).toBe(true);
      runner.start();
      try {
        const later = [added('s', 3)];
        await append(h, log, later);
        await runner.waitFor('tally', consistencyToken([...first, ...later]));
        expect(await docs(store, p, ['s'])).toEqual({ s: { total: 6, count: 3 } });
        const after = await runner.status('tally');
        expect(after).toMatchObject({ lagEvents: 0, lagMs: 0, state: 'running', active: true });
        expect(after.position >= before.head).toBe(true);
      } finally {
        await runner.stop();
      }
    });

    test('rebuild in place truncates and replays to the same read model', async (h) => {
      const log = h.eventStore();
      const store = h.projectionStore();
      await h.counters.create('pc_rebuild');
      const p = tally();
      const c = counterProjection('pc_rebuild', h.counters);
      await append(h, log, [added('r', 1), added('q', 2), added('r', 3)]);
      const runner = runnerOf(log, store, [p, c]);
      await runner.catchUp();
      const built = await docs(store, p, ['r', 'q']);
      await runner.rebuild('tally', 'in-place');
      await runner.rebuild('counter', 'in-place');
      expect(await docs(store, p, ['r', 'q'])).toEqual(built);
      expect([...(await h.counters.read('pc_rebuild')).values()]).toEqual([1, 1, 1]);
      expect((await runner.status('tally')).lagEvents).toBe(0);
    });

    test('side by side: version 2 builds in its own rows while version 1 serves, then takes over reads', async (h) => {
      const log = h.eventStore();
      const store = h.projectionStore();
      const v1 = tally('sbs', 1);
      const v2 = tally('sbs', 2);
      await append(h, log, [added('d', 1), added('d', 2)]);
      await runnerOf(log, store, [v1]).catchUp();
      const v2runner = runnerOf(log, store, [v2]);
      await v2runner.catchUp();
      // Built in its own rows, but version 1 still serves reads.
      const own = await store.readDocuments(undefined, { name: 'sbs', version: 2 }, ['d']);
      expect(JSON.parse(own.get('d')!.doc)).toEqual({ total: 6, count: 2 });
      expect(await docs(store, v2, ['d'])).toEqual({ d: { total: 3, count: 2 } });
      expect(await docs(store, v1, ['d'])).toEqual({ d: { total: 3, count: 2 } });
      await append(h, log, [added('d', 4)]);
      await v2runner.rebuild('sbs', 'activate');
      expect(await docs(store, v1, ['d'])).toEqual({ d: { total: 14, count: 3 } });
      expect((await store.load('sbs'))?.version).toBe(2);
      expect((await store.load('sbs', 1))?.active).toBe(false);
    });

    test(
      '8 concurrent writers read through a projection: every event applied once',
      async (h) => {
        const log = h.eventStore();
        const store = h.projectionStore();
        await h.counters.create('pc_gap');
        const p = counterProjection('pc_gap', h.counters);
        const runner = runnerOf(log, store, [p], { batchSize: 37 });
        runner.start();
        const ids: string[] = [];
        try {
          await Promise.all(
            Array.from({ length: 8 }, async (_, w) => {
              for (let i = 0; i < 25; i++) {
                const batch = [added(`w${w}-${i}`, i), added(`w${w}-${i}b`, i)];
                for (const e of batch) ids.push(e.metadata.requestId!);
                await h.tx((tx) => log.outbox.append(tx, batch));
              }
            }),
          );
          await runner.waitFor('counter', { events: ids.map((id) => ({ id, type: Added.type })) });
        } finally {
          await runner.stop();
        }
        const rows = await h.counters.read('pc_gap');
        expect(rows.size).toBe(400);
        expect([...rows.values()].every((n) => n === 1)).toBe(true);
      },
      { timeout: 60_000 },
    );

    test(
      'a SIGKILLed runner is taken over by another with no event skipped or applied twice',
      async (h) => {
        const log = h.eventStore();
        const store = h.projectionStore();
        await h.counters.create('pc_kill');
        const events = Array.from({ length: 1_500 }, (_, i) => added(`k${i}`, i));
        for (let i = 0; i < events.length; i += 500)
          await h.tx((tx) => log.outbox.append(tx, events.slice(i, i + 500)));
        await visible(log, events);
        const child = h.spawnRunner!({ table: 'pc_kill', leaseMs: 1_500, batchSize: 10, pauseMs: 1 });
        try {
          let out = '';
          child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
          await waitFor(() => out.includes('ready'), 20_000, 'the child runner');
          await waitFor(
            async () => (await h.counters.read('pc_kill')).size >= 200,
            20_000,
            'the child to apply events',
          );
          child.kill('SIGKILL');
          await new Promise((resolve) =>
            child.exitCode !== null ? resolve(null) : child.once('exit', resolve),
          );
        } finally {
          if (child.exitCode === null) child.kill('SIGKILL');
        }
        const applied = (await h.counters.read('pc_kill')).size;
        expect(applied).toBeLessThan(events.length);
        const runner = runnerOf(log, store, [counterProjection('pc_kill', h.counters)], {
          leaseMs: 1_500,
        });
        await waitFor(
          async () => {
            await runner.catchUp();
            return (await runner.status('counter')).lagEvents === 0;
          },
          30_000,
          'the takeover',
        );
        const rows = await h.counters.read('pc_kill');
        expect(rows.size).toBe(events.length);
        for (const e of events) expect(rows.get(e.metadata.requestId!)).toBe(1);
      },
      { when: (h) => h.spawnRunner !== undefined, timeout: 90_000 },
    );
  });
}
