import {
  createInMemoryIdempotencyStore,
  createInMemoryOutboxStore,
  createInMemoryUnitOfWork,
  createMediator,
  defineCommand,
  defineEvent,
  handle,
  type IdempotencyDispatchOptions,
  type InMemoryTransaction,
  isCqrsError,
  isRetryable,
  on,
  outsideUnitOfWork,
  StorageError,
} from '@cqrs-ts/core';
import {
  type ActiveUnitOfWork,
  commandFingerprint,
  createUnitOfWork,
  decodeIdempotentResult,
  encodeIdempotentResult,
  idempotencyId,
  unitOfWorkOf,
} from '@cqrs-ts/core/spi';
import { describeUnitOfWorkContract } from '@cqrs-ts/testing/contracts';
import { describe, expect, expectTypeOf, it } from 'vitest';

describeUnitOfWorkContract<InMemoryTransaction>('in-memory', async () => {
  let outbox = createInMemoryOutboxStore();
  let idempotency = createInMemoryIdempotencyStore();
  let rows: string[] = [];
  return {
    unitOfWork: (options) =>
      createInMemoryUnitOfWork({ outbox, idempotency: options?.idempotency === false ? false : idempotency }),
    async insertRow(tx, id) {
      tx.onCommit(() => rows.push(id));
    },
    rows: async () => [...rows],
    outbox: async () => outbox.records().map((r) => r.id),
    idempotencyRecords: async () => idempotency.size,
    async reset() {
      outbox = createInMemoryOutboxStore();
      idempotency = createInMemoryIdempotencyStore();
      rows = [];
    },
    async close() {},
  };
});

const Placed = defineEvent('uow.placed').withPayload<{ id: string }>();
const Place = defineCommand('uow.place')
  .withPayload<{ id: string; at?: unknown }>()
  .returns<{ id: string }>();

describe('in-memory unit of work', () => {
  it('hands handlers a typed transaction and keeps its stores', async () => {
    const uow = createInMemoryUnitOfWork();
    const mediator = createMediator({
      behaviors: [uow],
      handlers: [
        handle(Place, (cmd, ctx) => {
          const tx = uow.transaction(ctx);
          expectTypeOf(tx).toEqualTypeOf<InMemoryTransaction>();
          expectTypeOf(ctx.get(uow.key)).toEqualTypeOf<InMemoryTransaction | undefined>();
          ctx.emit(Placed, { id: cmd.payload.id });
          return { id: cmd.payload.id };
        }),
      ],
    });
    await mediator.send(Place.create({ id: 'a' }));
    expect(uow.outbox.records().map((r) => r.type)).toEqual(['uow.placed']);
  });

  it('runs onCommit work only when the unit commits', async () => {
    const uow = createInMemoryUnitOfWork();
    const applied: string[] = [];
    const mediator = createMediator({
      behaviors: [uow],
      handlers: [
        handle(Place, (cmd, ctx) => {
          uow.transaction(ctx).onCommit(() => applied.push(cmd.payload.id));
          if (cmd.payload.id === 'bad') throw new Error('no');
          return { id: cmd.payload.id };
        }),
      ],
    });
    await mediator.send(Place.create({ id: 'ok' }));
    await expect(mediator.send(Place.create({ id: 'bad' }))).rejects.toThrow('no');
    expect(applied).toEqual(['ok']);
  });

  it('refuses malformed input to its helpers', async () => {
    const uow = createInMemoryUnitOfWork();
    let inside: ActiveUnitOfWork | undefined;
    const mediator = createMediator({
      behaviors: [uow],
      handlers: [
        handle(Place, (cmd, ctx) => {
          inside = unitOfWorkOf(ctx);
          expect(() => inside!.appended([{ kind: 'command' } as never])).toThrow(/appended\(\) takes events/);
          expect(() => inside!.appended([null as never])).toThrow(/appended\(\) takes events/);
          return { id: cmd.payload.id };
        }),
      ],
    });
    await mediator.send(Place.create({ id: 'a' }));
    expect(() => inside!.appended([Placed.create({ id: 'late' })])).toThrow(/has already ended/);
    for (const bad of [undefined, null, {}, 'ctx']) {
      expect(() => uow.transaction(bad as never)).toThrow(/takes the handler's context/);
      expect(() => unitOfWorkOf(bad as never)).toThrow(/takes a dispatch context/);
    }
    expect(() => outsideUnitOfWork(42 as never)).toThrow(/takes a function/);
  });

  it('refuses a transaction used after its unit ended', async () => {
    const uow = createInMemoryUnitOfWork();
    let kept: InMemoryTransaction | undefined;
    const mediator = createMediator({
      behaviors: [uow],
      handlers: [
        handle(Place, (cmd, ctx) => {
          kept = uow.transaction(ctx);
          return { id: cmd.payload.id };
        }),
      ],
    });
    await mediator.send(Place.create({ id: 'a' }));
    expect(() => kept!.onCommit(() => {})).toThrow(/has ended/);
    expect(() => kept!.onCommit(42 as never)).toThrow();
  });
});

describe('createUnitOfWork', () => {
  const outbox = createInMemoryOutboxStore();
  const transactions = { run: <T>(work: (tx: unknown) => Promise<T>) => work({}) };
  it('refuses missing or malformed options at start-up', () => {
    const cases: [unknown, RegExp][] = [
      [{ transactions, outbox }, /name is required/],
      [{ name: 'u', outbox }, /transactions must have run/],
      [{ name: 'u', transactions }, /an outbox store is required/],
      [{ name: 'u', transactions, outbox: {} }, /an outbox store is required/],
      [{ name: 'u', transactions, outbox, idempotency: { find() {} } }, /idempotency must be/],
      [{ name: 'u', transactions, outbox, maxResultBytes: 0 }, /maxResultBytes/],
      [{ name: 'u', transactions, outbox, maxResultBytes: 1.5 }, /maxResultBytes/],
      [{ name: 'u', transactions, outbox, toStorageError: 'map' }, /toStorageError must be a function/],
    ];
    for (const [options, pattern] of cases) {
      let error: unknown;
      try {
        createUnitOfWork(options as never);
      } catch (e) {
        error = e;
      }
      expect(isCqrsError(error, 'CQRS_CONFIGURATION'), String(pattern)).toBe(true);
      expect((error as Error).message).toMatch(pattern);
    }
  });

  it('classifies failures of the transaction itself, and passes the command errors on', async () => {
    const failing = (where: 'begin' | 'commit') => ({
      async run<T>(work: (tx: unknown) => Promise<T>) {
        if (where === 'begin') throw new Error('connection refused');
        await work({});
        throw new Error('commit failed');
      },
    });
    const mapped: string[] = [];
    const toStorageError = (error: unknown, what: string) => {
      mapped.push(`${what}: ${(error as Error).message}`);
      return new StorageError('connection', 'mapped', { cause: error });
    };
    for (const where of ['begin', 'commit'] as const) {
      const uow = createUnitOfWork({ name: 'u', transactions: failing(where), outbox, toStorageError });
      const mediator = createMediator({
        behaviors: [uow],
        handlers: [handle(Place, (cmd) => ({ id: cmd.payload.id }))],
      });
      const error = await mediator.send(Place.create({ id: 'a' })).catch((e: unknown) => e);
      expect(isCqrsError(error, 'CQRS_STORAGE')).toBe(true);
    }
    const own = createUnitOfWork({ name: 'u', transactions, outbox, toStorageError });
    const mediator = createMediator({
      behaviors: [own],
      handlers: [
        handle(Place, () => {
          throw new Error('business rule');
        }),
      ],
    });
    await expect(mediator.send(Place.create({ id: 'a' }))).rejects.toThrow('business rule');
    expect(mapped).toEqual([
      'unit of work transaction: connection refused',
      'unit of work transaction: commit failed',
    ]);
  });

  it('refuses a unit placed around something other than the mediator context', async () => {
    const uow = createInMemoryUnitOfWork();
    const mediator = createMediator({
      behaviors: [(m, c, next) => next(m, { ...c, get: c.get.bind(c), set: c.set.bind(c) } as never), uow],
      handlers: [handle(Place, (cmd) => ({ id: cmd.payload.id }))],
    });
    const error = await mediator.send(Place.create({ id: 'a' })).catch((e: unknown) => e);
    expect(isCqrsError(error, 'CQRS_CONFIGURATION')).toBe(true);
  });
});

describe('idempotency keys', () => {
  it('are checked when the message is created', () => {
    for (const bad of ['', 'x'.repeat(201), 'a\nb', 'tab\there', '\u0085', 42]) {
      let error: unknown;
      try {
        Place.create({ id: 'a' }, { idempotencyKey: bad as string });
      } catch (e) {
        error = e;
      }
      expect(isCqrsError(error, 'CQRS_VALIDATION'), JSON.stringify(bad)).toBe(true);
    }
    expect(
      Place.create({ id: 'a' }, { idempotencyKey: 'x'.repeat(200) }).metadata.idempotencyKey,
    ).toHaveLength(200);
    expect(Place.create({ id: 'a' }, { idempotencyKey: 'clé-✓' }).metadata.idempotencyKey).toBe('clé-✓');
    expect('idempotencyKey' in Place.create({ id: 'a' }).metadata).toBe(false);
  });

  it('survive a JSON round trip of the command', async () => {
    const cmd = Place.create({ id: 'a' }, { idempotencyKey: 'k-1' });
    const back = await Place.decode(JSON.stringify(cmd));
    expect(back.metadata.idempotencyKey).toBe('k-1');
  });

  it('are refused by a pipeline without a unit of work to keep them', async () => {
    let runs = 0;
    const handlers = [handle(Place, (cmd) => ({ id: `${cmd.payload.id}${++runs}` }))];
    for (const behaviors of [[], [createInMemoryUnitOfWork({ idempotency: false })]]) {
      const mediator = createMediator({ behaviors, handlers });
      const error = await mediator
        .send(Place.create({ id: 'a' }, { idempotencyKey: 'k' }))
        .catch((e: unknown) => e);
      expect(isCqrsError(error, 'CQRS_CONFIGURATION')).toBe(true);
      expect((error as Error).message).toMatch(/no unit of work with an idempotency store/);
    }
    const lax = createMediator({ handlers, unenforced: ['idempotency'] });
    expect(await lax.send(Place.create({ id: 'a' }, { idempotencyKey: 'k' }))).toEqual({ id: 'a1' });
    expect(await lax.send(Place.create({ id: 'a' }, { idempotencyKey: 'k' }))).toEqual({ id: 'a2' });
  });

  it('are not inherited by messages created inside a handler', async () => {
    let inner: string | undefined = 'unset';
    const mediator = createMediator({
      behaviors: [createInMemoryUnitOfWork()],
      handlers: [
        handle(Place, (cmd) => {
          inner = Place.create({ id: 'x' }).metadata.idempotencyKey;
          return { id: cmd.payload.id };
        }),
      ],
    });
    await mediator.send(Place.create({ id: 'a' }, { idempotencyKey: 'k' }));
    expect(inner).toBeUndefined();
  });

  it('are stored under a hash of tenant and key', () => {
    expect(idempotencyId('k', undefined)).toMatch(/^[0-9a-f]{64}$/);
    expect(idempotencyId('k', 'a')).not.toBe(idempotencyId('k', 'b'));
    expect(idempotencyId('k', undefined)).not.toBe(idempotencyId('k', 'null'));
    expect(idempotencyId('K', undefined)).not.toBe(idempotencyId('k', undefined));
  });

  it('fingerprint the type and payload, whatever the key order', () => {
    const a = Place.create({ id: 'a', at: { x: 1, y: [1, 2] } });
    const b = Place.create({ at: { y: [1, 2], x: 1 }, id: 'a' } as never);
    expect(commandFingerprint(a)).toBe(commandFingerprint(b));
    expect(commandFingerprint(a)).not.toBe(
      commandFingerprint(Place.create({ id: 'b', at: { x: 1, y: [1, 2] } })),
    );
    const bigint = { kind: 'command', type: 't', payload: { n: 1n }, metadata: a.metadata } as never;
    expect(() => commandFingerprint(bigint)).toThrow(/cannot be fingerprinted/);
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    expect(() => commandFingerprint({ ...a, payload: cyclic } as never)).toThrow(/a cycle/);
  });

  it('store results that JSON carries and refuse the others loudly', () => {
    for (const ok of [undefined, null, 0, 'x', [1, 'a'], { a: 1, b: { c: [true] } }, { a: undefined }]) {
      const text = encodeIdempotentResult('t', ok, 1000);
      expect(decodeIdempotentResult('t', text)).toEqual(ok);
    }
    const refused: [unknown, RegExp][] = [
      [new Date(), /result is a Date/],
      [{ m: new Map() }, /result\.m is a Map/],
      [{ n: Number.NaN }, /result\.n is NaN/],
      [[1, undefined], /result\[1\] is undefined/],
      [{ f: () => 1 }, /result\.f is a function/],
      [10n, /result is a bigint/],
      [Symbol('s'), /result is a symbol/],
    ];
    for (const [value, pattern] of refused) {
      let error: unknown;
      try {
        encodeIdempotentResult('t', value, 1000);
      } catch (e) {
        error = e;
      }
      expect(isCqrsError(error, 'CQRS_SERIALIZATION'), String(pattern)).toBe(true);
      expect((error as Error).message).toMatch(pattern);
    }
    const big = encodeIdempotentResult.bind(null, 't', 'é'.repeat(600), 1000);
    expect(big).toThrow(/more than the 1000 allowed/);
    expect(() => decodeIdempotentResult('t', '{')).toThrow(/not JSON/);
    expect(() => decodeIdempotentResult('t', '[1,2]')).toThrow(/malformed/);
  });
});

describe('claiming an idempotency key', () => {
  /** An in-memory store that counts reads before the transaction, claims and transactions. */
  const counting = () => {
    const inner = createInMemoryIdempotencyStore();
    const calls = { find: 0, claim: 0 };
    const store = {
      ...inner,
      async find(...args: Parameters<typeof inner.find>) {
        calls.find++;
        return inner.find(...args);
      },
      async claim(...args: Parameters<typeof inner.claim>) {
        calls.claim++;
        return inner.claim(...args);
      },
      complete: inner.complete,
    };
    return { store, calls };
  };

  it('claims the key in the transaction without reading it first; a replay is found by the claim', async () => {
    const { store, calls } = counting();
    let runs = 0;
    const mediator = createMediator({
      behaviors: [createInMemoryUnitOfWork({ idempotency: store as never })],
      handlers: [handle(Place, (cmd) => ({ id: `${cmd.payload.id}${++runs}` }))],
    });
    expect(await mediator.send(Place.create({ id: 'a' }, { idempotencyKey: 'k' }))).toEqual({ id: 'a1' });
    expect(calls).toEqual({ find: 0, claim: 1 });
    expect(await mediator.send(Place.create({ id: 'a' }, { idempotencyKey: 'k' }))).toEqual({ id: 'a1' });
    expect(calls).toEqual({ find: 0, claim: 2 });
    expect(runs).toBe(1);
  });

  it('with readBeforeClaim reads the key first, so a replay opens no transaction', async () => {
    const { store, calls } = counting();
    let runs = 0;
    const mediator = createMediator({
      behaviors: [createInMemoryUnitOfWork({ idempotency: store as never, readBeforeClaim: true })],
      handlers: [handle(Place, (cmd) => ({ id: `${cmd.payload.id}${++runs}` }))],
    });
    await mediator.send(Place.create({ id: 'a' }, { idempotencyKey: 'k' }));
    expect(calls).toEqual({ find: 1, claim: 1 });
    expect(await mediator.send(Place.create({ id: 'a' }, { idempotencyKey: 'k' }))).toEqual({ id: 'a1' });
    expect(calls).toEqual({ find: 2, claim: 1 });
    expect(runs).toBe(1);
  });

  it('refuses a readBeforeClaim that is not a boolean', () => {
    expect(() => createInMemoryUnitOfWork({ readBeforeClaim: 'yes' as never })).toThrow(
      /readBeforeClaim must be true or false/,
    );
  });

  it('retries a claim that lost a deadlock, before the handler ran', async () => {
    const inner = createInMemoryIdempotencyStore();
    let claims = 0;
    const idempotency = {
      ...inner,
      find: inner.find,
      complete: inner.complete,
      async claim(...args: Parameters<typeof inner.claim>) {
        if (++claims === 1) throw new StorageError('deadlock', 'deadlock detected');
        return inner.claim(...args);
      },
    };
    const uow = createInMemoryUnitOfWork({ idempotency: idempotency as never });
    let runs = 0;
    const mediator = createMediator({
      behaviors: [uow],
      handlers: [handle(Place, (cmd) => ({ id: `${cmd.payload.id}${++runs}` }))],
    });
    expect(await mediator.send(Place.create({ id: 'a' }, { idempotencyKey: 'k' }))).toEqual({ id: 'a1' });
    expect(claims).toBe(2);
    expect(runs).toBe(1);
  });

  it('does not retry a failure once the handler ran', async () => {
    const inner = createInMemoryIdempotencyStore();
    const idempotency = {
      ...inner,
      find: inner.find,
      claim: inner.claim,
      async complete() {
        throw new StorageError('deadlock', 'deadlock detected');
      },
    };
    const uow = createInMemoryUnitOfWork({ idempotency: idempotency as never });
    let runs = 0;
    const mediator = createMediator({
      behaviors: [uow],
      handlers: [handle(Place, (cmd) => ({ id: `${cmd.payload.id}${++runs}` }))],
    });
    const error = await mediator
      .send(Place.create({ id: 'a' }, { idempotencyKey: 'k' }))
      .catch((e: unknown) => e);
    expect(error).toMatchObject({ reason: 'deadlock' });
    expect(runs).toBe(1);
  });
});

describe('events emitted inside a unit', () => {
  it('are dispatched once, after the commit', async () => {
    const uow = createInMemoryUnitOfWork();
    const seen: string[] = [];
    const mediator = createMediator({
      behaviors: [uow],
      handlers: [
        handle(Place, (cmd, ctx) => {
          ctx.emit(Placed, { id: cmd.payload.id });
          return { id: cmd.payload.id };
        }),
        on(Placed, (e) => void seen.push(e.type)),
      ],
    });
    await mediator.send(Place.create({ id: 'a' }));
    expect(seen).toEqual(['uow.placed']);
    expect(uow.outbox.records()).toHaveLength(1);
  });
});

describe('a repeat of a key still running', () => {
  const gated = () => {
    let open!: () => void;
    const gate = new Promise<void>((resolve) => (open = resolve));
    let entered!: () => void;
    const started = new Promise<void>((resolve) => (entered = resolve));
    let runs = 0;
    const mediator = createMediator({
      behaviors: [createInMemoryUnitOfWork()],
      handlers: [
        handle(Place, async (cmd) => {
          runs++;
          entered();
          await gate;
          return { id: cmd.payload.id };
        }),
      ],
    });
    return { mediator, open, started, runs: () => runs };
  };

  it("is refused at once with inFlight: 'reject', and runs nothing", async () => {
    const { mediator, open, started, runs } = gated();
    const first = mediator.send(Place.create({ id: 'a' }, { idempotencyKey: 'k' }));
    await started;
    const error = await mediator
      .send(Place.create({ id: 'a' }, { idempotencyKey: 'k' }), { idempotency: { inFlight: 'reject' } })
      .catch((e: unknown) => e);
    expect(isCqrsError(error, 'CQRS_IDEMPOTENCY_IN_FLIGHT')).toBe(true);
    expect(error).toMatchObject({ idempotencyKey: 'k', messageType: 'uow.place' });
    expect(isRetryable(error)).toBe(false);
    // Another body with the key is refused the same way while the first runs.
    const other = await mediator
      .send(Place.create({ id: 'b' }, { idempotencyKey: 'k' }), { idempotency: { inFlight: 'reject' } })
      .catch((e: unknown) => e);
    expect(isCqrsError(other, 'CQRS_IDEMPOTENCY_IN_FLIGHT')).toBe(true);
    open();
    expect(await first).toEqual({ id: 'a' });
    expect(runs()).toBe(1);
    // Once the first has ended, the same request is a replay, not a refusal.
    let replays = 0;
    const again = await mediator.send(Place.create({ id: 'a' }, { idempotencyKey: 'k' }), {
      idempotency: { inFlight: 'reject', onReplay: () => replays++ },
    });
    expect(again).toEqual({ id: 'a' });
    expect(replays).toBe(1);
  });

  it('is waited for by default, then replayed and reported to onReplay', async () => {
    const { mediator, open, started, runs } = gated();
    let firstReplays = 0;
    const first = mediator.send(Place.create({ id: 'a' }, { idempotencyKey: 'k' }), {
      idempotency: { onReplay: () => firstReplays++ },
    });
    await started;
    let replays = 0;
    const second = mediator.send(Place.create({ id: 'a' }, { idempotencyKey: 'k' }), {
      idempotency: { onReplay: () => replays++ },
    });
    open();
    expect(await Promise.all([first, second])).toEqual([{ id: 'a' }, { id: 'a' }]);
    expect(runs()).toBe(1);
    expect([firstReplays, replays]).toEqual([0, 1]);
  });

  it('of 100 concurrent rejecting sends runs the handler once', async () => {
    const { mediator, open, started, runs } = gated();
    const sends = Array.from({ length: 100 }, () =>
      mediator
        .send(Place.create({ id: 'a' }, { idempotencyKey: 'k' }), { idempotency: { inFlight: 'reject' } })
        .catch((e: unknown) => e),
    );
    await started;
    open();
    const results = await Promise.all(sends);
    expect(runs()).toBe(1);
    expect(results.filter((r) => isCqrsError(r, 'CQRS_IDEMPOTENCY_IN_FLIGHT'))).toHaveLength(99);
    expect(results.filter((r) => !isCqrsError(r))).toEqual([{ id: 'a' }]);
  });

  it('is refused inside a unit when a nested command asks not to wait', async () => {
    const Nested = defineCommand('uow.nested').withPayload<{ id: string }>();
    let inner: unknown;
    const mediator = createMediator({
      behaviors: [createInMemoryUnitOfWork()],
      handlers: [
        handle(Place, async (cmd) => {
          const a = mediator.send(Nested.create({ id: 'n' }, { idempotencyKey: 'n' }));
          inner = await mediator
            .send(Nested.create({ id: 'n' }, { idempotencyKey: 'n' }), {
              idempotency: { inFlight: 'reject' },
            })
            .catch((e: unknown) => e);
          await a;
          return { id: cmd.payload.id };
        }),
        handle(Nested, async () => {
          await new Promise((resolve) => setImmediate(resolve));
        }),
      ],
    });
    expect(await mediator.send(Place.create({ id: 'a' }))).toEqual({ id: 'a' });
    expect(isCqrsError(inner, 'CQRS_IDEMPOTENCY_IN_FLIGHT')).toBe(true);
  });

  it('refuses malformed idempotency options', async () => {
    const mediator = createMediator({
      behaviors: [createInMemoryUnitOfWork()],
      handlers: [handle(Place, (cmd) => ({ id: cmd.payload.id }))],
    });
    for (const idempotency of [
      'reject',
      null,
      { inFlight: 'never' },
      { onReplay: 'yes' },
    ] as unknown as IdempotencyDispatchOptions[]) {
      const error = await mediator
        .send(Place.create({ id: 'a' }, { idempotencyKey: 'k' }), { idempotency })
        .catch((e: unknown) => e);
      expect(isCqrsError(error, 'CQRS_CONFIGURATION'), JSON.stringify(idempotency)).toBe(true);
      expect((error as Error).message).toMatch(/idempotency/);
    }
  });
});
