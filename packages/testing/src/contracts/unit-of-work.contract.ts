import {
  AggregateRoot,
  type AnyEvent,
  createMediator,
  defineCommand,
  defineEvent,
  defineQuery,
  handle,
  isCqrsError,
  type Mediator,
  type MediatorOptions,
  on,
  outsideUnitOfWork,
  retry,
  timeout,
  type UnitOfWork,
} from '@cqrs-ts/core';
import { currentUnitOfWork, unitOfWorkOf } from '@cqrs-ts/core/spi';
import { describe, expect } from 'vitest';
import { describeHarness, type HarnessLifecycle } from './harness.ts';

/** What a storage adapter provides to run the shared unit-of-work contract. */
export interface UnitOfWorkHarness<TTx> extends HarnessLifecycle {
  /** A unit of work over the harness's tables; `idempotency: false` builds one without an idempotency store. */
  unitOfWork(options?: { readonly idempotency?: boolean }): UnitOfWork<TTx>;
  /** Writes one business row with the handler's transaction. */
  insertRow(tx: TTx, id: string): Promise<void>;
  /** Ids of the committed business rows, read outside any transaction of the unit. */
  rows(): Promise<readonly string[]>;
  /** Ids (the events' request ids) of the committed outbox rows, in append order. */
  outbox(): Promise<readonly string[]>;
  /** Number of committed idempotency records. */
  idempotencyRecords(): Promise<number>;
  /**
   * `true` when the store runs one transaction at a time on one connection (SQLite): a command sent in
   * `outsideUnitOfWork()` while a unit is open on it is refused instead of committing on its own.
   */
  readonly exclusive?: boolean;
  /** Deletes every row (between tests). */
  reset(): Promise<void>;
  close(): Promise<void>;
}

const ItemAdded = defineEvent('uow-contract.item-added', {
  topic: 'uow-contract',
  key: (p: { id: string; blob?: string }) => p.id,
}).withPayload<{ id: string; blob?: string }>();

const AddItem = defineCommand('uow-contract.add-item')
  .withPayload<{ id: string; n?: number }>()
  .returns<{ id: string; n: number } | undefined>();
const AddTwo = defineCommand('uow-contract.add-two').withPayload<{ id: string }>().returns<void>();
const ReadItems = defineQuery('uow-contract.read-items').withPayload<{ id: string }>().returns<boolean>();

class Basket extends AggregateRoot<AnyEvent> {
  readonly items: string[] = [];
  add(id: string): void {
    this.raise(ItemAdded.create({ id }) as AnyEvent);
  }
  protected apply(event: AnyEvent): void {
    this.items.push((event.payload as { id: string }).id);
  }
}

interface Deferred<T = void> {
  readonly promise: Promise<T>;
  resolve(value: T): void;
}

function deferred<T = void>(): Deferred<T> {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

/**
 * Registers the shared unit-of-work and idempotency contract for one storage adapter; `setup` returns
 * `undefined` to skip (its service is unreachable). Core's in-memory unit of work passes it too.
 */
export function describeUnitOfWorkContract<TTx>(
  name: string,
  setup: () => Promise<UnitOfWorkHarness<TTx> | undefined>,
): void {
  describeHarness(`${name} unit of work contract`, setup, (test) => {
    const run = (title: string, fn: (h: UnitOfWorkHarness<TTx>) => Promise<void>, timeoutMs?: number) =>
      test(title, fn, timeoutMs === undefined ? undefined : { timeout: timeoutMs });

    /** A mediator over the harness's unit of work, which records what its in-process event handler saw. */
    const build = (
      h: UnitOfWorkHarness<TTx>,
      handlers: (uow: UnitOfWork<TTx>) => MediatorOptions['handlers'],
      options: { behaviors?: MediatorOptions['behaviors']; uow?: UnitOfWork<TTx> } = {},
    ) => {
      const uow = options.uow ?? h.unitOfWork();
      const seen: { id: string; committed: boolean; inUnit: boolean }[] = [];
      const mediator = createMediator({
        behaviors: options.behaviors ?? [uow],
        handlers: [
          ...(handlers(uow) ?? []),
          on(ItemAdded, async (event) => {
            const rows = await h.rows();
            seen.push({
              id: event.payload.id,
              // The row its command wrote (`o` for `o-before` and `o-after`) is committed already.
              committed: rows.includes(event.payload.id.replace(/-(before|after)$/, '')),
              inUnit: currentUnitOfWork() !== undefined,
            });
          }),
        ],
      });
      return { uow, mediator, seen };
    };

    const addItem = (uow: UnitOfWork<TTx>, h: UnitOfWorkHarness<TTx>, calls?: { n: number }) =>
      handle(AddItem, async (cmd, ctx) => {
        const n = calls === undefined ? 1 : ++calls.n;
        await h.insertRow(uow.transaction(ctx), cmd.payload.id);
        ctx.emit(ItemAdded, { id: cmd.payload.id });
        return { id: cmd.payload.id, n };
      });

    describe('transactions', () => {
      run(
        'commits the business row and the emitted event together; in-process handlers run after the commit',
        async (h) => {
          const { mediator, seen } = build(h, (uow) => [addItem(uow, h)]);
          const result = await mediator.send(AddItem.create({ id: 'a' }));
          expect(result).toEqual({ id: 'a', n: 1 });
          expect(await h.rows()).toEqual(['a']);
          expect(await h.outbox()).toHaveLength(1);
          expect(seen).toEqual([{ id: 'a', committed: true, inUnit: false }]);
        },
      );

      run('a handler that throws writes nothing and dispatches nothing', async (h) => {
        const { mediator, seen } = build(h, (uow) => [
          handle(AddItem, async (cmd, ctx) => {
            await h.insertRow(uow.transaction(ctx), cmd.payload.id);
            ctx.emit(ItemAdded, { id: cmd.payload.id });
            throw new Error('refused');
          }),
        ]);
        await expect(mediator.send(AddItem.create({ id: 'a' }))).rejects.toThrow('refused');
        expect(await h.rows()).toEqual([]);
        expect(await h.outbox()).toEqual([]);
        expect(seen).toEqual([]);
      });

      run('an event the outbox refuses rolls the business row back', async (h) => {
        const { mediator, seen } = build(h, (uow) => [
          handle(AddItem, async (cmd, ctx) => {
            await h.insertRow(uow.transaction(ctx), cmd.payload.id);
            ctx.emit(ItemAdded, { id: cmd.payload.id, blob: 'x'.repeat(2_000_000) });
            return undefined;
          }),
        ]);
        const error = await mediator.send(AddItem.create({ id: 'a' })).catch((e: unknown) => e);
        expect(isCqrsError(error, 'CQRS_PAYLOAD_TOO_LARGE')).toBe(true);
        expect(await h.rows()).toEqual([]);
        expect(await h.outbox()).toEqual([]);
        expect(seen).toEqual([]);
      });

      run('appends the events of tracked aggregates', async (h) => {
        const { mediator, seen } = build(h, (uow) => [
          handle(AddItem, async (cmd, ctx) => {
            const basket = new Basket();
            ctx.track(basket);
            basket.add(`${cmd.payload.id}1`);
            basket.add(`${cmd.payload.id}2`);
            await h.insertRow(uow.transaction(ctx), cmd.payload.id);
            return undefined;
          }),
        ]);
        await mediator.send(AddItem.create({ id: 'b' }));
        expect(await h.outbox()).toHaveLength(2);
        expect(seen.map((s) => s.id)).toEqual(['b1', 'b2']);
      });

      run('the handler, its context and the repositories see one transaction', async (h) => {
        let same = false;
        const { mediator } = build(h, (uow) => [
          handle(AddItem, async (_cmd, ctx) => {
            const tx = uow.transaction(ctx);
            same =
              ctx.get(uow.key) === tx &&
              unitOfWorkOf(ctx)?.transaction === tx &&
              currentUnitOfWork()?.transaction === tx;
            return undefined;
          }),
        ]);
        await mediator.send(AddItem.create({ id: 'a' }));
        expect(same).toBe(true);
      });

      run(
        'events a repository reports as written are dispatched after the commit, not appended again',
        async (h) => {
          const { mediator, seen } = build(h, () => [
            handle(AddItem, async (cmd, ctx) => {
              ctx.emit(ItemAdded, { id: `${cmd.payload.id}-emitted` });
              unitOfWorkOf(ctx)!.appended([
                ItemAdded.create({ id: `${cmd.payload.id}-written` }) as AnyEvent,
              ]);
              return undefined;
            }),
          ]);
          await mediator.send(AddItem.create({ id: 'a' }));
          expect(await h.outbox()).toHaveLength(1);
          expect(seen.map((s) => s.id)).toEqual(['a-written', 'a-emitted']);
        },
      );

      run('queries do not open a transaction', async (h) => {
        let inQuery: unknown = 'unset';
        let refused: unknown;
        const { mediator } = build(h, (uow) => [
          handle(ReadItems, (_q, ctx) => {
            inQuery = ctx.get(uow.key);
            try {
              uow.transaction(ctx);
            } catch (error) {
              refused = error;
            }
            return currentUnitOfWork() !== undefined;
          }),
        ]);
        expect(await mediator.query(ReadItems.create({ id: 'a' }))).toBe(false);
        expect(inQuery).toBeUndefined();
        expect(isCqrsError(refused, 'CQRS_CONFIGURATION')).toBe(true);
      });

      run('a timeout outside the unit rolls back a handler that outlives it', async (h) => {
        const gate = deferred();
        const settled = deferred();
        const uow = h.unitOfWork();
        const { mediator, seen } = build(
          h,
          () => [
            handle(
              AddItem,
              async (cmd, ctx) => {
                await h.insertRow(uow.transaction(ctx), cmd.payload.id);
                ctx.emit(ItemAdded, { id: cmd.payload.id });
                await gate.promise;
                return undefined;
              },
              { timeout: 50 },
            ),
          ],
          {
            uow,
            behaviors: [timeout(), (m, c, next) => next(m, c).finally(() => settled.resolve()), uow],
          },
        );
        const error = await mediator.send(AddItem.create({ id: 'late' })).catch((e: unknown) => e);
        expect(isCqrsError(error, 'CQRS_TIMEOUT')).toBe(true);
        gate.resolve();
        await settled.promise;
        expect(await h.rows()).toEqual([]);
        expect(await h.outbox()).toEqual([]);
        expect(seen).toEqual([]);
      });

      run('a retry outside the unit gives each attempt a fresh transaction', async (h) => {
        const calls = { n: 0 };
        const uow = h.unitOfWork();
        const { mediator } = build(
          h,
          () => [
            handle(
              AddItem,
              async (cmd, ctx) => {
                calls.n++;
                await h.insertRow(uow.transaction(ctx), `${cmd.payload.id}${calls.n}`);
                ctx.emit(ItemAdded, { id: `${cmd.payload.id}${calls.n}` });
                if (calls.n === 1) throw new Error('transient');
                return undefined;
              },
              { retries: 2, backoff: { initialMs: 0, maxMs: 0 } },
            ),
          ],
          { uow, behaviors: [retry(), uow] },
        );
        await mediator.send(AddItem.create({ id: 'r' }));
        expect(await h.rows()).toEqual(['r2']);
        expect(await h.outbox()).toHaveLength(1);
      });
    });

    describe('nested commands', () => {
      const nested = (
        h: UnitOfWorkHarness<TTx>,
        options: { failInner?: boolean; failOuter?: boolean; catchInner?: boolean; detach?: boolean } = {},
      ) => {
        const txs: unknown[] = [];
        let mediator!: Mediator;
        const built = build(h, (uow) => [
          handle(AddItem, async (cmd, ctx) => {
            txs.push(uow.transaction(ctx));
            await h.insertRow(uow.transaction(ctx), cmd.payload.id);
            ctx.emit(ItemAdded, { id: cmd.payload.id });
            if (options.failInner) throw new Error('inner refused');
            return { id: cmd.payload.id, n: 1 };
          }),
          handle(AddTwo, async (cmd, ctx) => {
            txs.push(uow.transaction(ctx));
            ctx.emit(ItemAdded, { id: `${cmd.payload.id}-before` });
            const send = () => mediator.send(AddItem.create({ id: `${cmd.payload.id}-inner` }));
            try {
              await (options.detach ? outsideUnitOfWork(send) : send());
            } catch (error) {
              if (!options.catchInner) throw error;
            }
            await h.insertRow(uow.transaction(ctx), cmd.payload.id);
            ctx.emit(ItemAdded, { id: `${cmd.payload.id}-after` });
            if (options.failOuter) throw new Error('outer refused');
          }),
        ]);
        mediator = built.mediator;
        return { ...built, txs };
      };

      run(
        'join the unit: one transaction, events appended and dispatched after the commit, in order',
        async (h) => {
          const { mediator, seen, txs } = nested(h);
          await mediator.send(AddTwo.create({ id: 'o' }));
          expect(txs).toHaveLength(2);
          expect(txs[0]).toBe(txs[1]);
          expect([...(await h.rows())].sort()).toEqual(['o', 'o-inner']);
          expect(await h.outbox()).toHaveLength(3);
          expect(seen).toEqual([
            { id: 'o-before', committed: true, inUnit: false },
            { id: 'o-inner', committed: true, inUnit: false },
            { id: 'o-after', committed: true, inUnit: false },
          ]);
        },
      );

      run(
        'join a unit of another behavior over the same database (another mediator, another unit)',
        async (h) => {
          const inner = build(h, (uow) => [addItem(uow, h)]);
          let outerTx: unknown;
          let innerTx: unknown;
          const innerUow = inner.uow;
          const outer = build(h, (uow) => [
            handle(AddTwo, async (cmd, ctx) => {
              outerTx = uow.transaction(ctx);
              await inner.mediator.send(AddItem.create({ id: `${cmd.payload.id}-inner` }));
              innerTx = currentUnitOfWork()?.transaction;
              throw new Error('outer refused');
            }),
          ]);
          expect(outer.uow).not.toBe(innerUow);
          await expect(outer.mediator.send(AddTwo.create({ id: 'o' }))).rejects.toThrow('outer refused');
          expect(innerTx).toBe(outerTx);
          expect(await h.rows()).toEqual([]);
          expect(await h.outbox()).toEqual([]);
          expect(inner.seen).toEqual([]);
        },
      );

      run('an outer failure rolls back what the nested command wrote', async (h) => {
        const { mediator, seen } = nested(h, { failOuter: true });
        await expect(mediator.send(AddTwo.create({ id: 'o' }))).rejects.toThrow('outer refused');
        expect(await h.rows()).toEqual([]);
        expect(await h.outbox()).toEqual([]);
        expect(seen).toEqual([]);
      });

      run('a nested failure rolls the unit back even when the outer handler catches it', async (h) => {
        const { mediator, seen } = nested(h, { failInner: true, catchInner: true });
        const error = await mediator.send(AddTwo.create({ id: 'o' })).catch((e: unknown) => e);
        expect(isCqrsError(error, 'CQRS_PROCESSING')).toBe(true);
        expect((error as Error).cause).toEqual(new Error('inner refused'));
        expect(await h.rows()).toEqual([]);
        expect(await h.outbox()).toEqual([]);
        expect(seen).toEqual([]);
      });

      run(
        'outsideUnitOfWork(): the nested command commits on its own and outlives the outer rollback',
        async (h) => {
          const { mediator, seen, txs } = nested(h, { failOuter: true, detach: true });
          const error = await mediator.send(AddTwo.create({ id: 'o' })).catch((e: unknown) => e);
          if (h.exclusive) {
            // One connection, one transaction at a time: the detached command would wait for the outer forever.
            expect(isCqrsError(error, 'CQRS_CONFIGURATION')).toBe(true);
            expect(await h.rows()).toEqual([]);
            expect(seen).toEqual([]);
            return;
          }
          expect(error).toEqual(new Error('outer refused'));
          expect(txs[0]).not.toBe(txs[1]);
          expect(await h.rows()).toEqual(['o-inner']);
          expect(await h.outbox()).toHaveLength(1);
          expect(seen).toEqual([{ id: 'o-inner', committed: true, inUnit: false }]);
        },
      );
    });

    describe('refusals at start-up', () => {
      const refuses = (
        h: UnitOfWorkHarness<TTx>,
        behaviors: (uow: UnitOfWork<TTx>) => MediatorOptions['behaviors'],
        pattern: RegExp,
        options: { retries?: number; timeout?: number } = {},
      ) => {
        const uow = h.unitOfWork();
        let error: unknown;
        try {
          createMediator({
            behaviors: behaviors(uow) ?? [],
            handlers: [handle(AddItem, () => undefined, options)],
          });
        } catch (e) {
          error = e;
        }
        expect(isCqrsError(error, 'CQRS_CONFIGURATION')).toBe(true);
        expect((error as Error).message).toMatch(pattern);
      };

      run('retry() or timeout() inside the unit', async (h) => {
        refuses(h, (uow) => [uow, retry()], /retry\(\) is placed inside/, { retries: 2 });
        refuses(h, (uow) => [uow, timeout()], /timeout\(\) is placed inside/, { timeout: 1000 });
      });

      run('two units of work in one pipeline', async (h) => {
        refuses(h, (uow) => [uow, h.unitOfWork()], /two units of work/);
      });

      run('a unit of work aimed at queries', async (h) => {
        const uow = h.unitOfWork();
        expect(() =>
          createMediator({
            behaviors: [
              { name: uow.name, target: { kinds: ['query'] }, forHandler: (d) => uow.forHandler(d) },
            ],
            handlers: [handle(ReadItems, () => true)],
          }),
        ).toThrow(/queries do not open write transactions/);
      });
    });

    describe('idempotent commands', () => {
      const keyed = (id: string, key: string, tenantId?: string) =>
        AddItem.create({ id }, { idempotencyKey: key, ...(tenantId !== undefined ? { tenantId } : {}) });

      run('a repeat with the same key returns the stored result without running the handler', async (h) => {
        const calls = { n: 0 };
        const { mediator, seen } = build(h, (uow) => [addItem(uow, h, calls)]);
        const first = await mediator.send(keyed('a', 'k-1'));
        const again = await mediator.send(keyed('a', 'k-1'));
        expect(first).toEqual({ id: 'a', n: 1 });
        expect(again).toEqual(first);
        expect(calls.n).toBe(1);
        expect(await h.rows()).toEqual(['a']);
        expect(await h.outbox()).toHaveLength(1);
        expect(seen.map((s) => s.id)).toEqual(['a']);
        expect(await h.idempotencyRecords()).toBe(1);
      });

      run(
        'the same key with another payload or type is an IdempotencyConflictError and runs nothing',
        async (h) => {
          const calls = { n: 0 };
          const { mediator } = build(h, (uow) => [
            addItem(uow, h, calls),
            handle(AddTwo, () => {
              calls.n++;
            }),
          ]);
          await mediator.send(keyed('a', 'k-1'));
          for (const other of [keyed('b', 'k-1'), AddTwo.create({ id: 'a' }, { idempotencyKey: 'k-1' })]) {
            const error = await mediator.send(other).catch((e: unknown) => e);
            expect(isCqrsError(error, 'CQRS_IDEMPOTENCY_CONFLICT')).toBe(true);
            expect(error).toMatchObject({ idempotencyKey: 'k-1', messageType: other.type });
          }
          expect(calls.n).toBe(1);
          expect(await h.rows()).toEqual(['a']);
        },
      );

      run('keys are scoped by tenant and are case-sensitive', async (h) => {
        const calls = { n: 0 };
        const { mediator } = build(h, (uow) => [addItem(uow, h, calls)]);
        await mediator.send(keyed('a', 'k-1', 'tenant-a'));
        await mediator.send(keyed('b', 'k-1', 'tenant-b'));
        await mediator.send(keyed('c', 'k-1'));
        await mediator.send(keyed('d', 'K-1'));
        expect(calls.n).toBe(4);
        await mediator.send(keyed('a', 'k-1', 'tenant-a'));
        await mediator.send(keyed('d', 'K-1'));
        expect(calls.n).toBe(4);
        expect([...(await h.rows())].sort()).toEqual(['a', 'b', 'c', 'd']);
      });

      run(
        '100 concurrent sends with one key run the handler once and all get its result',
        async (h) => {
          const calls = { n: 0 };
          const { mediator } = build(h, (uow) => [addItem(uow, h, calls)]);
          const results = await Promise.all(
            Array.from({ length: 100 }, () => mediator.send(keyed('a', 'hot'))),
          );
          expect(calls.n).toBe(1);
          expect(new Set(results.map((r) => JSON.stringify(r)))).toEqual(
            new Set([JSON.stringify({ id: 'a', n: 1 })]),
          );
          expect(await h.rows()).toEqual(['a']);
          expect(await h.outbox()).toHaveLength(1);
        },
        60_000,
      );

      run('a void result replays as undefined', async (h) => {
        const calls = { n: 0 };
        const { mediator } = build(h, () => [
          handle(AddTwo, () => {
            calls.n++;
          }),
        ]);
        const cmd = () => AddTwo.create({ id: 'v' }, { idempotencyKey: 'void' });
        expect(await mediator.send(cmd())).toBeUndefined();
        expect(await mediator.send(cmd())).toBeUndefined();
        expect(calls.n).toBe(1);
      });

      run('a result JSON cannot carry is refused and nothing is written', async (h) => {
        const { mediator } = build(h, (uow) => [
          handle(AddItem, async (cmd, ctx) => {
            await h.insertRow(uow.transaction(ctx), cmd.payload.id);
            ctx.emit(ItemAdded, { id: cmd.payload.id });
            return { id: cmd.payload.id, n: 1, at: new Date() } as never;
          }),
        ]);
        const error = await mediator.send(keyed('a', 'date')).catch((e: unknown) => e);
        expect(isCqrsError(error, 'CQRS_SERIALIZATION')).toBe(true);
        expect((error as Error).message).toMatch(/result\.at is a Date/);
        expect(await h.rows()).toEqual([]);
        expect(await h.outbox()).toEqual([]);
        expect(await h.idempotencyRecords()).toBe(0);
      });

      run('a failed first run leaves the key free for the next attempt', async (h) => {
        let fail = true;
        const calls = { n: 0 };
        const { mediator } = build(h, (uow) => [
          handle(AddItem, async (cmd, ctx) => {
            calls.n++;
            await h.insertRow(uow.transaction(ctx), cmd.payload.id);
            if (fail) throw new Error('first fails');
            return { id: cmd.payload.id, n: calls.n };
          }),
        ]);
        await expect(mediator.send(keyed('a', 'k'))).rejects.toThrow('first fails');
        fail = false;
        expect(await mediator.send(keyed('a', 'k'))).toEqual({ id: 'a', n: 2 });
        expect(await mediator.send(keyed('a', 'k'))).toEqual({ id: 'a', n: 2 });
        expect(calls.n).toBe(2);
      });

      run('a nested keyed command stores its record in the outer transaction', async (h) => {
        const calls = { n: 0 };
        let fail = true;
        let mediator!: Mediator;
        const built = build(h, (uow) => [
          addItem(uow, h, calls),
          handle(AddTwo, async (cmd) => {
            await mediator.send(keyed(cmd.payload.id, `nested-${cmd.payload.id}`));
            if (fail) throw new Error('outer refused');
          }),
        ]);
        mediator = built.mediator;
        await expect(mediator.send(AddTwo.create({ id: 'n' }))).rejects.toThrow('outer refused');
        expect(await h.idempotencyRecords()).toBe(0);
        fail = false;
        await mediator.send(AddTwo.create({ id: 'n' }));
        expect(await h.idempotencyRecords()).toBe(1);
        expect(await mediator.send(keyed('n', 'nested-n'))).toEqual({ id: 'n', n: 2 });
        expect(calls.n).toBe(2);
      });

      run(
        'a key sent twice inside one unit replays the first result there and after the commit',
        async (h) => {
          const calls = { n: 0 };
          const results: unknown[] = [];
          let mediator!: Mediator;
          const built = build(h, (uow) => [
            addItem(uow, h, calls),
            handle(AddTwo, async (cmd) => {
              results.push(await mediator.send(keyed(cmd.payload.id, 'twice')));
              results.push(await mediator.send(keyed(cmd.payload.id, 'twice')));
            }),
          ]);
          mediator = built.mediator;
          await mediator.send(AddTwo.create({ id: 'o' }));
          expect(results).toEqual([
            { id: 'o', n: 1 },
            { id: 'o', n: 1 },
          ]);
          expect(await mediator.send(keyed('o', 'twice'))).toEqual({ id: 'o', n: 1 });
          expect(calls.n).toBe(1);
          expect(await h.rows()).toEqual(['o']);
        },
      );

      run('a result with quotes, backslashes and any Unicode replays exactly', async (h) => {
        const calls = { n: 0 };
        const { mediator } = build(h, (uow) => [addItem(uow, h, calls)]);
        const id = `it's \\ a \\' "quote" \\\\n ü 😀 \u0001; COMMIT; --`;
        const first = await mediator.send(keyed(id, 'odd'));
        expect(first).toEqual({ id, n: 1 });
        expect(await mediator.send(keyed(id, 'odd'))).toEqual(first);
        expect(calls.n).toBe(1);
      });

      run('a key sent to a unit of work without an idempotency store is refused', async (h) => {
        const calls = { n: 0 };
        const uow = h.unitOfWork({ idempotency: false });
        const { mediator } = build(h, () => [addItem(uow, h, calls)], { uow });
        const error = await mediator.send(keyed('a', 'k')).catch((e: unknown) => e);
        expect(isCqrsError(error, 'CQRS_CONFIGURATION')).toBe(true);
        expect(calls.n).toBe(0);
        expect(await h.rows()).toEqual([]);
      });
    });
  });
}
