/**
 * Contract of the event log and streams (`EventStore` of `@cqrs-ts/core`) and of the event-sourced repository
 * over it: numbered streams with expected-version appends, two writers racing on one stream, positions that
 * never skip a late commit, bounded and filtered reads, retention (stream events survive purge; with `archive`
 * every published event does), snapshots, typed errors for bad input.
 * @module
 */
import {
  type AnyEvent,
  ConcurrencyError,
  compareLogPositions,
  createEventSourcedRepository,
  createInMemoryBroker,
  createLogDecoder,
  createMediator,
  createOutboxRelay,
  defineCommand,
  defineEvent,
  type EventLogEntry,
  type EventStore,
  handle,
  isCqrsError,
  LOG_START,
  on,
  type UnitOfWork,
} from '@cqrs-ts/core';
import type { OutboxStore } from '@cqrs-ts/core/spi';
import { expect } from 'vitest';
import { waitFor } from '../wait-for.ts';
import { describeHarness } from './harness.ts';

/** An event store of the adapter, with the outbox store over the same tables. */
export type ContractEventStore<TTx> = EventStore<TTx> & { readonly outbox: OutboxStore<TTx> };

/** What a storage adapter provides to run {@link describeEventStoreContract}. */
export interface EventStoreHarness<TTx> {
  /** An event store over the harness's tables; `archive` as given (default `false`). */
  store(options?: { readonly archive?: boolean }): ContractEventStore<TTx>;
  /** Runs `fn` in a transaction and commits. */
  tx<T>(fn: (tx: TTx) => Promise<T>): Promise<T>;
  /** Runs `fn` in a transaction, then rolls back. */
  rollback(fn: (tx: TTx) => Promise<void>): Promise<void>;
  /** `true` when two transactions can be open at once (SQLite's single connection cannot). */
  readonly concurrentTransactions: boolean;
  /** The adapter's unit of work over the store's outbox, to run repositories inside it; tests skip without it. */
  unitOfWork?(store: ContractEventStore<TTx>): UnitOfWork<unknown>;
  /** Empties the tables (between tests). */
  reset(): Promise<void>;
  close(): Promise<void>;
}

const CartOpened = defineEvent('contract.cart-opened').withPayload<{ cartId: string }>();
const ItemAdded = defineEvent('contract.item-added').withPayload<{
  cartId: string;
  sku: string;
  n: number;
}>();
const Keyed = defineEvent('contract.keyed', { key: (p: { k: string }) => p.k }).withPayload<{ k: string }>();
const Other = defineEvent('contract.other').withPayload<{ n: number }>();

const item = (cartId: string, n: number) => ItemAdded.create({ cartId, sku: `sku-${n}`, n }) as AnyEvent;
const other = (n: number) => Other.create({ n }) as AnyEvent;

const decoder = createLogDecoder();
const payloadOf = async (e: EventLogEntry) => (await decoder.decode(e)).payload as Record<string, unknown>;

const rejects = async (promise: Promise<unknown>): Promise<unknown> => {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error('expected a rejection');
};

/** Reads the whole log from the start in batches of `limit`. */
async function readAll(store: EventStore<unknown>, limit = 500): Promise<EventLogEntry[]> {
  const out: EventLogEntry[] = [];
  let after = LOG_START;
  for (;;) {
    const batch = await store.read({ after, limit });
    out.push(...batch.entries);
    if (batch.entries.length === 0 || batch.position === after) return out;
    after = batch.position;
  }
}

/**
 * Reads the whole log once it holds `count` events (a store may show a commit to readers a little later, e.g.
 * while an older transaction elsewhere on the server is still open); fails after 20 s.
 */
async function readLog(store: EventStore<unknown>, count: number, limit = 500): Promise<EventLogEntry[]> {
  let all: EventLogEntry[] = [];
  const full = async () => {
    all = await readAll(store, limit);
    return all.length >= count;
  };
  await waitFor(full, 20_000).catch(() => {});
  return all;
}

interface Cart {
  readonly open: boolean;
  readonly items: readonly string[];
}

/**
 * Registers the event store contract for one adapter. `setup` runs once (its `undefined` skips the suite),
 * `reset` before each test, `close` after the last.
 * @example
 * describeEventStoreContract('in-memory', async () => harness);
 */
export function describeEventStoreContract<TTx>(
  name: string,
  setup: () => Promise<EventStoreHarness<TTx> | undefined>,
): void {
  describeHarness(`${name} event store contract`, setup, (test) => {
    test('numbers the events of a stream from 1 and reads them back by stream and by position', async (h) => {
      const store = h.store();
      await h.tx((tx) =>
        store.appendToStream(tx, 'cart-1', [item('1', 1), item('1', 2)], { expectedVersion: 'no-stream' }),
      );
      await h.tx((tx) => store.appendToStream(tx, 'cart-2', [item('2', 1)], { expectedVersion: 0 }));
      const r = await h.tx((tx) =>
        store.appendToStream(tx, 'cart-1', [item('1', 3)], { expectedVersion: 2 }),
      );
      expect(r.version).toBe(3);
      const stream = await store.readStream('cart-1');
      expect(stream.map((e) => e.streamVersion)).toEqual([1, 2, 3]);
      expect(stream.every((e) => e.streamId === 'cart-1' && e.type === ItemAdded.type)).toBe(true);
      expect(await Promise.all(stream.map(async (e) => (await payloadOf(e)).n))).toEqual([1, 2, 3]);
      expect(
        (await store.readStream('cart-1', { fromVersion: 2, limit: 1 })).map((e) => e.streamVersion),
      ).toEqual([2]);
      expect(await store.readStream('nothing-here')).toEqual([]);

      const log = await readLog(store, 4);
      expect(log.map((e) => `${e.streamId}@${e.streamVersion}`)).toEqual([
        'cart-1@1',
        'cart-1@2',
        'cart-2@1',
        'cart-1@3',
      ]);
      for (let i = 1; i < log.length; i++)
        expect(compareLogPositions(log[i - 1]!.position, log[i]!.position)).toBeLessThan(0);
      // positions compare as strings too
      expect([...log.map((e) => e.position)].sort()).toEqual(log.map((e) => e.position));
      const decoded = await decoder.decode(log[0]!);
      expect(decoded.metadata.requestId).toBe(log[0]!.id);
    });

    test('sees its own appends inside the transaction; a rolled back append leaves no event and no stream', async (h) => {
      const store = h.store();
      await h.tx(async (tx) => {
        await store.appendToStream(tx, 'cart-1', [item('1', 1)], { expectedVersion: 'no-stream' });
        const loaded = await store.loadStream(tx, 'cart-1');
        expect(loaded.version).toBe(1);
        expect(loaded.events.map((e) => e.streamVersion)).toEqual([1]);
        await store.appendToStream(tx, 'cart-1', [item('1', 2)], { expectedVersion: 1 });
      });
      await h.rollback(async (tx) => {
        await store.appendToStream(tx, 'cart-1', [item('1', 3)], { expectedVersion: 2 });
        await store.appendToStream(tx, 'cart-9', [item('9', 1)], { expectedVersion: 'no-stream' });
      });
      expect((await store.readStream('cart-1')).map((e) => e.streamVersion)).toEqual([1, 2]);
      expect(await store.readStream('cart-9')).toEqual([]);
      expect((await h.tx((tx) => store.loadStream(tx, 'cart-9'))).version).toBe(0);
      expect((await readLog(store, 2)).length).toBe(2);
      // the rolled back stream can be created again
      await h.tx((tx) =>
        store.appendToStream(tx, 'cart-9', [item('9', 1)], { expectedVersion: 'no-stream' }),
      );
    });

    test('checks each expectation and reports the expected and actual versions', async (h) => {
      const store = h.store();
      const append = (
        streamId: string,
        expectedVersion: Parameters<typeof store.appendToStream>[3]['expectedVersion'],
      ) => h.tx((tx) => store.appendToStream(tx, streamId, [item(streamId, 1)], { expectedVersion }));
      const conflict = async (p: Promise<unknown>) => {
        const error = await rejects(p);
        expect(error).toBeInstanceOf(ConcurrencyError);
        expect(isCqrsError(error, 'CQRS_CONCURRENCY')).toBe(true);
        return error as ConcurrencyError;
      };
      expect(await conflict(append('s', 'stream-exists'))).toMatchObject({
        subject: 's',
        expected: 'stream-exists',
        actual: undefined,
      });
      expect(await conflict(append('s', 1))).toMatchObject({ expected: 1, actual: undefined });
      expect((await append('s', 'any')).version).toBe(1);
      expect(await conflict(append('s', 'no-stream'))).toMatchObject({ expected: 'no-stream', actual: 1 });
      expect(await conflict(append('s', 0))).toMatchObject({ expected: 0, actual: 1 });
      expect(await conflict(append('s', 5))).toMatchObject({ expected: 5, actual: 1 });
      expect((await append('s', 'stream-exists')).version).toBe(2);
      expect((await append('s', 2)).version).toBe(3);
      expect((await append('s', 'any')).version).toBe(4);
      expect((await append('t', 0)).version).toBe(1);
      expect((await store.readStream('s')).map((e) => e.streamVersion)).toEqual([1, 2, 3, 4]);
      // appending nothing checks the expectation and writes nothing
      expect((await h.tx((tx) => store.appendToStream(tx, 's', [], { expectedVersion: 4 }))).version).toBe(4);
      await conflict(h.tx((tx) => store.appendToStream(tx, 's', [], { expectedVersion: 3 })));
      expect((await readLog(store, 5)).length).toBe(5);
    });

    test('two writers racing on one stream: exactly one wins, the other gets a ConcurrencyError and writes nothing', async (h) => {
      const store = h.store();
      await h.tx((tx) => store.appendToStream(tx, 'race', [item('r', 0)], { expectedVersion: 'no-stream' }));
      for (let round = 1; round <= 5; round++) {
        const loaded = await h.tx((tx) => store.loadStream(tx, 'race'));
        const writer = (w: number) =>
          h.tx(async (tx) => {
            await store.appendToStream(
              tx,
              'race',
              [item('r', round * 10 + w), item('r', round * 10 + w + 5)],
              {
                expectedVersion: loaded.version,
              },
            );
            return w;
          });
        const results = await Promise.allSettled([writer(1), writer(2)]);
        const won = results.filter((r) => r.status === 'fulfilled');
        const lost = results.filter((r) => r.status === 'rejected');
        expect(won).toHaveLength(1);
        expect(lost).toHaveLength(1);
        const error = (lost[0] as PromiseRejectedResult).reason as ConcurrencyError;
        expect(error).toBeInstanceOf(ConcurrencyError);
        expect(error.expected).toBe(loaded.version);
        expect(error.actual).toBe(loaded.version + 2);
        const winner = (won[0] as PromiseFulfilledResult<number>).value;
        const stream = await store.readStream('race', { fromVersion: loaded.version + 1 });
        expect(await Promise.all(stream.map(async (e) => (await payloadOf(e)).n))).toEqual([
          round * 10 + winner,
          round * 10 + winner + 5,
        ]);
      }
      expect((await store.readStream('race')).length).toBe(11);
      expect((await readLog(store, 11)).length).toBe(11);
    });

    test(
      'a reader checkpointing on position never skips an event whose transaction committed late',
      async (h) => {
        const store = h.store();
        await h.tx((tx) =>
          store.appendToStream(tx, 'early', [item('e', 0)], { expectedVersion: 'no-stream' }),
        );
        const early = await readLog(store, 1);
        expect(early).toHaveLength(1);
        const first = { position: early[0]!.position };
        let releaseLate!: () => void;
        const lateMayCommit = new Promise<void>((r) => (releaseLate = r));
        let lateAppended!: () => void;
        const lateHasAppended = new Promise<void>((r) => (lateAppended = r));
        // the late writer appends first (it takes the lower sequence) and commits last
        const late = h.tx(async (tx) => {
          await store.appendToStream(tx, 'late', [item('l', 1)], { expectedVersion: 'no-stream' });
          lateAppended();
          await lateMayCommit;
        });
        await lateHasAppended;
        await h.tx((tx) =>
          store.appendToStream(tx, 'quick', [item('q', 1)], { expectedVersion: 'no-stream' }),
        );
        // a reader now sees 'quick' only when it may skip 'late'; it must not
        const reading = store.read({ after: first.position });
        releaseLate();
        await late;
        const seen = [...(await reading).entries];
        let after = seen.at(-1)?.position ?? first.position;
        await waitFor(
          async () => {
            const next = await store.read({ after });
            seen.push(...next.entries);
            after = next.position;
            return seen.length >= 2;
          },
          20_000,
          'the late event',
        );
        expect(seen.map((e) => e.streamId).sort()).toEqual(['late', 'quick']);
      },
      { when: (h) => h.concurrentTransactions },
    );

    test('reads bounded batches in position order; a filtered read returns only its types and moves past the rest', async (h) => {
      const store = h.store();
      for (let i = 0; i < 6; i++) {
        await h.tx(async (tx) => {
          await store.appendToStream(tx, `c-${i}`, [item(`${i}`, 1), item(`${i}`, 2)], {
            expectedVersion: 'no-stream',
          });
          await store.outbox.append(tx, [other(i)]);
        });
      }
      const all = await readLog(store, 18, 4);
      expect(all).toHaveLength(18);
      expect(
        all
          .filter((e) => e.type === Other.type)
          .every((e) => e.streamId === null && e.streamVersion === null),
      ).toBe(true);
      const batch = await store.read({ limit: 5 });
      expect(batch.entries).toHaveLength(5);
      expect(batch.position).toBe(batch.entries[4]!.position);
      const others = await store.read({ types: [Other.type], limit: 3 });
      expect(others.entries.map((e) => e.type)).toEqual([Other.type, Other.type, Other.type]);
      const rest = await store.read({ types: [Other.type], after: others.position });
      expect(rest.entries).toHaveLength(3);
      // nothing of that type is left: the checkpoint still moves to the end of what was scanned
      const none = await store.read({ types: [Other.type], after: rest.position });
      expect(none.entries).toEqual([]);
      expect(compareLogPositions(none.position, rest.position)).toBeGreaterThanOrEqual(0);
      const end = await store.read({ after: all.at(-1)!.position });
      expect(end).toEqual({ entries: [], position: all.at(-1)!.position });
    });

    for (const archive of [false, true]) {
      test(`publishes stream events through the relay and keeps them in the log after purge (archive: ${archive})`, async (h) => {
        const store = h.store({ archive });
        expect(store.capabilities.archive).toBe(archive);
        await h.tx(async (tx) => {
          await store.appendToStream(tx, 'cart-1', [item('1', 1), item('1', 2)], {
            expectedVersion: 'no-stream',
          });
          await store.outbox.append(tx, [other(1)]);
        });
        const broker = createInMemoryBroker();
        const published: { type: string; key: string | null; subject: string | undefined }[] = [];
        broker.subscribe('*', (m) => {
          published.push({ type: m.type, key: m.key, subject: m.headers.subject });
        });
        await createOutboxRelay({ store: store.outbox, publisher: broker }).runOnce();
        // an event without a key is keyed by its stream
        expect(published).toEqual([
          { type: ItemAdded.type, key: 'cart-1', subject: 'cart-1' },
          { type: ItemAdded.type, key: 'cart-1', subject: 'cart-1' },
          { type: Other.type, key: null, subject: undefined },
        ]);
        const purged = await store.outbox.purge({ publishedBefore: Date.now() + 60_000 });
        expect(purged).toBe(3);
        expect((await store.outbox.stats(Date.now())).backlog).toBe(0);
        expect((await store.readStream('cart-1')).map((e) => e.streamVersion)).toEqual([1, 2]);
        const log = await readLog(store, archive ? 3 : 2);
        expect(log.map((e) => e.type)).toEqual(
          archive ? [ItemAdded.type, ItemAdded.type, Other.type] : [ItemAdded.type, ItemAdded.type],
        );
        // the stream goes on from its version
        await h.tx((tx) => store.appendToStream(tx, 'cart-1', [item('1', 3)], { expectedVersion: 2 }));
        await rejects(
          h.tx((tx) => store.appendToStream(tx, 'cart-1', [item('1', 3)], { expectedVersion: 2 })),
        );
        expect((await store.readStream('cart-1')).map((e) => e.streamVersion)).toEqual([1, 2, 3]);
        expect(
          (await h.tx((tx) => store.loadStream(tx, 'cart-1'))).events.map((e) => e.streamVersion),
        ).toEqual([1, 2, 3]);
      });
    }

    test('keeps an event key of its own', async (h) => {
      const store = h.store();
      await h.tx((tx) =>
        store.appendToStream(tx, 's', [Keyed.create({ k: 'mine' }) as AnyEvent], { expectedVersion: 'any' }),
      );
      expect((await store.readStream('s'))[0]!.key).toBe('mine');
    });

    test('stores a snapshot with an append and returns it with the events after it', async (h) => {
      const store = h.store();
      await h.tx((tx) =>
        store.appendToStream(tx, 's', [item('s', 1), item('s', 2)], {
          expectedVersion: 0,
          snapshot: { version: 2, state: '{"n":2}' },
        }),
      );
      await h.tx((tx) => store.appendToStream(tx, 's', [item('s', 3)], { expectedVersion: 2 }));
      const loaded = await h.tx((tx) => store.loadStream(tx, 's', { useSnapshot: true }));
      expect(loaded.version).toBe(3);
      expect(loaded.snapshot).toEqual({ version: 2, state: '{"n":2}' });
      expect(loaded.events.map((e) => e.streamVersion)).toEqual([3]);
      const whole = await h.tx((tx) => store.loadStream(tx, 's'));
      expect(whole.snapshot).toBeUndefined();
      expect(whole.events.map((e) => e.streamVersion)).toEqual([1, 2, 3]);
      const paged = await h.tx((tx) => store.loadStream(tx, 's', { fromVersion: 2, limit: 1 }));
      expect(paged.events.map((e) => e.streamVersion)).toEqual([2]);
    });

    test('refuses malformed input with a ValidationError and writes nothing', async (h) => {
      const store = h.store();
      const invalid = async (p: Promise<unknown>) => {
        const error = await rejects(p);
        expect(isCqrsError(error, 'CQRS_VALIDATION'), String(error)).toBe(true);
      };
      const bad: unknown[] = [
        { after: 'x' },
        { after: '-1' },
        { after: '1.2.3' },
        { after: '99999999999999999999999' },
        { after: 12 },
        { limit: 0 },
        { limit: 10_001 },
        { limit: 1.5 },
        { limit: '5' },
        { types: [] },
        { types: [''] },
        { types: 'x' },
        { types: Array.from({ length: 101 }, (_, i) => `t${i}`) },
        null,
        'nope',
      ];
      for (const request of bad) await invalid(store.read(request as never));
      for (const id of ['', 'x'.repeat(256), 'a\0b', '\ud800', 42, null])
        await invalid(store.readStream(id as never));
      await invalid(store.readStream('s', { fromVersion: 0 }));
      await invalid(store.readStream('s', { limit: -1 }));
      await h.tx(async (tx) => {
        for (const expectedVersion of [-1, 1.5, 'none', null, undefined])
          await invalid(store.appendToStream(tx, 's', [item('s', 1)], { expectedVersion } as never));
        await invalid(store.appendToStream(tx, 's', [item('s', 1)], null as never));
        await invalid(store.appendToStream(tx, '', [item('s', 1)], { expectedVersion: 'any' }));
        await invalid(store.appendToStream(tx, 's', 'events' as never, { expectedVersion: 'any' }));
        await invalid(
          store.appendToStream(tx, 's', [item('s', 1)], {
            expectedVersion: 0,
            snapshot: { version: 5, state: '{}' },
          }),
        );
        await invalid(
          store.appendToStream(tx, 's', [item('s', 1)], {
            expectedVersion: 'any',
            snapshot: { version: 1, state: '{}' },
          }),
        );
        await invalid(store.loadStream(tx, 's', { fromVersion: -3 }));
        const notAnEvent = await rejects(
          store.appendToStream(tx, 's', [{ kind: 'command' } as never], { expectedVersion: 'any' }),
        );
        expect(isCqrsError(notAnEvent, 'CQRS_OUTBOX')).toBe(true);
      });
      expect(await readAll(store)).toEqual([]);
      // a position of this log's own shape past the end reads nothing
      const end = await store.read({ after: LOG_START });
      expect(end.entries).toEqual([]);
    });

    test('an event-sourced repository replays, decides, appends and snapshots', async (h) => {
      const store = h.store();
      let replayed = 0;
      const make = (revision: number) =>
        createEventSourcedRepository({
          name: 'cart',
          store,
          events: [CartOpened, ItemAdded],
          initialState: (): Cart => ({ open: false, items: [] }),
          evolve: (state, event) => {
            replayed++;
            if (CartOpened.is(event)) return { ...state, open: true };
            return { ...state, items: [...state.items, event.payload.sku] };
          },
          snapshots: { every: 3, revision },
        });
      const carts = make(1);
      expect(carts.streamIdOf('c1')).toBe('cart-c1');
      const opened = await h.tx((tx) =>
        carts.update(tx, 'c1', (s) => (s.open ? [] : CartOpened.create({ cartId: 'c1' }))),
      );
      expect(opened).toMatchObject({ version: 1, state: { open: true, items: [] } });
      for (let n = 1; n <= 7; n++) {
        await h.tx((tx) =>
          carts.update(tx, 'c1', () => [ItemAdded.create({ cartId: 'c1', sku: `s${n}`, n })]),
        );
      }
      // nothing decided: nothing appended
      const same = await h.tx((tx) => carts.update(tx, 'c1', () => []));
      expect(same.version).toBe(8);
      expect(same.events).toEqual([]);
      replayed = 0;
      const loaded = await h.tx((tx) => carts.load(tx, 'c1'));
      expect(loaded).toEqual({
        id: 'c1',
        streamId: 'cart-c1',
        version: 8,
        state: { open: true, items: ['s1', 's2', 's3', 's4', 's5', 's6', 's7'] },
      });
      // the snapshot at version 6 leaves two events to replay
      expect(replayed).toBe(2);
      // another revision ignores the snapshot and replays everything
      replayed = 0;
      expect((await h.tx((tx) => make(2).load(tx, 'c1'))).state).toEqual(loaded.state);
      expect(replayed).toBe(8);
      // a new aggregate: version 0, initial state
      expect(await h.tx((tx) => carts.load(tx, 'c2'))).toMatchObject({
        version: 0,
        state: { open: false, items: [] },
      });
      // append with a stale version loses
      const error = await rejects(
        h.tx((tx) =>
          carts.append(tx, 'c1', [ItemAdded.create({ cartId: 'c1', sku: 'x', n: 0 })], {
            expectedVersion: 7,
          }),
        ),
      );
      expect(error).toMatchObject({ code: 'CQRS_CONCURRENCY', expected: 7, actual: 8 });
      // two handlers racing through update: one wins
      const results = await Promise.allSettled(
        [1, 2].map((w) =>
          h.tx(async (tx) => {
            await carts.load(tx, 'c1');
            return carts.update(tx, 'c1', () => [ItemAdded.create({ cartId: 'c1', sku: `w${w}`, n: w })]);
          }),
        ),
      );
      const won = results.filter((r) => r.status === 'fulfilled');
      expect(won.length).toBeGreaterThanOrEqual(1);
      for (const r of results) if (r.status === 'rejected') expect(r.reason).toBeInstanceOf(ConcurrencyError);
      expect((await h.tx((tx) => carts.load(tx, 'c1'))).version).toBe(8 + won.length);
    });

    test(
      "inside a unit of work a repository writes in the handler's transaction; its events are appended once and dispatched after the commit",
      async (h) => {
        const store = h.store();
        const unitOfWork = h.unitOfWork!(store);
        const carts = createEventSourcedRepository({
          name: 'cart',
          store,
          events: [CartOpened, ItemAdded],
          initialState: (): Cart => ({ open: false, items: [] }),
          evolve: (state, event) =>
            CartOpened.is(event)
              ? { ...state, open: true }
              : { ...state, items: [...state.items, event.payload.sku] },
        });
        const AddItem = defineCommand('contract.add-item')
          .withPayload<{ cartId: string; sku: string; fail?: boolean }>()
          .returns<number>();
        const dispatched: string[] = [];
        const mediator = createMediator({
          behaviors: [unitOfWork],
          handlers: [
            handle(AddItem, async (cmd, ctx) => {
              const { cartId, sku } = cmd.payload;
              const r = await carts.update(ctx, cartId, (s) => [
                ...(s.open ? [] : [CartOpened.create({ cartId })]),
                ItemAdded.create({ cartId, sku, n: s.items.length + 1 }),
              ]);
              ctx.emit(Other, { n: r.version });
              if (cmd.payload.fail === true) throw new Error('refused after the append');
              return r.version;
            }),
            on(ItemAdded, (e) => {
              dispatched.push(e.payload.sku);
            }),
          ],
        });
        expect(await mediator.send(AddItem.create({ cartId: 'c1', sku: 'a' }))).toBe(2);
        expect(await mediator.send(AddItem.create({ cartId: 'c1', sku: 'b' }))).toBe(3);
        const failed = await mediator
          .send(AddItem.create({ cartId: 'c1', sku: 'x', fail: true }))
          .catch((e: unknown) => e);
        expect(failed).toBeInstanceOf(Error);
        await mediator.whenIdle();
        expect(dispatched).toEqual(['a', 'b']);
        // the stream holds the committed events only; the emitted event went to the outbox beside them, once each
        expect((await store.readStream('cart-c1')).map((e) => e.type)).toEqual([
          CartOpened.type,
          ItemAdded.type,
          ItemAdded.type,
        ]);
        const log = await readLog(store, 5);
        expect(log.map((e) => e.type)).toEqual([
          CartOpened.type,
          ItemAdded.type,
          Other.type,
          ItemAdded.type,
          Other.type,
        ]);
        expect(new Set(log.map((e) => e.id)).size).toBe(5);
        // a repository handed a context outside any unit of work says so
        const Plain = defineCommand('contract.plain').withPayload<{ id: string }>();
        const plain = createMediator({
          handlers: [handle(Plain, (cmd, ctx) => carts.load(ctx, cmd.payload.id).then(() => {}))],
        });
        const error = await plain.send(Plain.create({ id: 'c1' })).catch((e: unknown) => e);
        expect(isCqrsError(error, 'CQRS_CONFIGURATION')).toBe(true);
      },
      { when: (h) => h.unitOfWork !== undefined },
    );
  });
}
