import {
  type AnyEvent,
  ConcurrencyError,
  compareLogPositions,
  createEventSourcedRepository,
  createInMemoryEventStore,
  createInMemoryOutboxStore,
  createInMemoryStateRepository,
  createLogDecoder,
  createMediator,
  defineCommand,
  defineEvent,
  handle,
  isConcurrencyError,
  isCqrsError,
  LOG_START,
  retry,
} from '@cqrs-ts/core';
import { describe, expect, it } from 'vitest';

const Deposited = defineEvent('bank.deposited').withPayload<{ amount: number }>();
const Deposit = defineCommand('bank.deposit')
  .withPayload<{ account: string; amount: number }>()
  .returns<number>();

function accounts(store = createInMemoryEventStore()) {
  return createEventSourcedRepository({
    name: 'account',
    store,
    events: [Deposited],
    initialState: () => ({ balance: 0 }),
    evolve: (s, e) => ({ balance: s.balance + e.payload.amount }),
  });
}

describe('ConcurrencyError', () => {
  it('carries the subject, the expected and the actual version, also as JSON', () => {
    const error = new ConcurrencyError('account-1', 3, 5);
    expect(error).toMatchObject({ code: 'CQRS_CONCURRENCY', subject: 'account-1', expected: 3, actual: 5 });
    expect(error.message).toBe('account-1: expected version 3, but it is at version 5');
    expect(new ConcurrencyError('a', 'no-stream', undefined).toJSON()).toEqual({
      name: 'ConcurrencyError',
      code: 'CQRS_CONCURRENCY',
      message: 'a: expected no-stream, but it does not exist',
      subject: 'a',
      expected: 'no-stream',
      actual: null,
    });
  });

  it('is recognised by isConcurrencyError, also across package copies, and nothing else is', () => {
    expect(isConcurrencyError(new ConcurrencyError('a', 1, 2))).toBe(true);
    const copy = JSON.parse(JSON.stringify({ code: 'CQRS_CONCURRENCY' })) as object;
    expect(isConcurrencyError(copy)).toBe(false);
    expect(isConcurrencyError(Object.assign(copy, { [Symbol.for('cqrs-ts.error')]: true }))).toBe(true);
    expect(isConcurrencyError(new Error('CQRS_CONCURRENCY'))).toBe(false);
    expect(isConcurrencyError(undefined)).toBe(false);
  });
});

describe('retry of a handler that lost a race', () => {
  it('re-runs the handler with retry({ retryOn: isConcurrencyError }), which loads the new version and wins', async () => {
    const store = createInMemoryEventStore();
    const repo = accounts(store);
    let runs = 0;
    let interfere = true;
    const mediator = createMediator({
      behaviors: [
        retry({ maxAttempts: 3, retryOn: isConcurrencyError, backoff: { initialMs: 0, maxMs: 0 } }),
      ],
      handlers: [
        handle(Deposit, (cmd) =>
          store.transaction(async (tx) => {
            runs++;
            const loaded = await repo.load(tx, cmd.payload.account);
            if (interfere) {
              // another writer appends between this handler's load and its append
              interfere = false;
              await store.transaction((other) =>
                repo.append(other, cmd.payload.account, [Deposited.create({ amount: 100 })], {
                  expectedVersion: loaded.version,
                }),
              );
            }
            const event = Deposited.create({ amount: cmd.payload.amount });
            await repo.append(tx, cmd.payload.account, [event], { expectedVersion: loaded.version });
            return loaded.state.balance + cmd.payload.amount;
          }),
        ),
      ],
    });
    expect(await mediator.send(Deposit.create({ account: 'a1', amount: 5 }))).toBe(105);
    expect(runs).toBe(2);
    expect((await store.transaction((tx) => repo.load(tx, 'a1'))).state.balance).toBe(105);
  });

  it('a ConcurrencyError reaches the caller of a handler that is not retried', async () => {
    const store = createInMemoryEventStore();
    const repo = accounts(store);
    await store.transaction((tx) =>
      repo.append(tx, 'a', [Deposited.create({ amount: 1 })], { expectedVersion: 0 }),
    );
    const mediator = createMediator({
      handlers: [
        handle(Deposit, (cmd) =>
          store.transaction(async (tx) => {
            await repo.append(tx, cmd.payload.account, [Deposited.create({ amount: 1 })], {
              expectedVersion: 0,
            });
            return 0;
          }),
        ),
      ],
    });
    const error = await mediator.send(Deposit.create({ account: 'a', amount: 1 })).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConcurrencyError);
    expect(error).toMatchObject({ expected: 0, actual: 1 });
  });
});

describe('log positions', () => {
  it('order by their numbers and compare as strings within one store', () => {
    expect(compareLogPositions('00000000000000000002', '00000000000000000010')).toBeLessThan(0);
    expect(compareLogPositions(LOG_START, '00000000000000000001')).toBeLessThan(0);
    expect(
      compareLogPositions(
        '00000000000000000007.00000000000000000001',
        '00000000000000000006.00000000000000000009',
      ),
    ).toBeGreaterThan(0);
    expect(compareLogPositions('5', '00000000000000000005')).toBe(0);
    for (const bad of ['', 'x', '1.2.3', '-1', '1e3']) {
      expect(() => compareLogPositions(bad, '0')).toThrow(
        expect.objectContaining({ code: 'CQRS_VALIDATION' }),
      );
    }
  });
});

describe('event-sourced repository', () => {
  it('refuses a missing or malformed option at construction', () => {
    const store = createInMemoryEventStore();
    const base = {
      name: 'x',
      store,
      events: [Deposited],
      initialState: () => 0,
      evolve: (s: number) => s,
    };
    const bad: Record<string, unknown>[] = [
      { name: '' },
      { store: {} },
      { events: [] },
      { events: [Deposit] },
      { initialState: 1 },
      { evolve: null },
      { snapshots: { every: 0 } },
    ];
    for (const change of bad) {
      expect(
        () => createEventSourcedRepository({ ...base, ...change } as never),
        JSON.stringify(change),
      ).toThrow(expect.objectContaining({ code: 'CQRS_CONFIGURATION' }));
    }
  });

  it('replays from the first event when a snapshot cannot be read', async () => {
    const store = createInMemoryEventStore();
    const repo = createEventSourcedRepository({
      name: 'account',
      store,
      events: [Deposited],
      initialState: () => ({ balance: 0 }),
      evolve: (s, e) => ({ balance: s.balance + e.payload.amount }),
      snapshots: {
        every: 2,
        decode: () => {
          throw new Error('corrupt');
        },
      },
    });
    for (let i = 0; i < 5; i++) {
      await store.transaction((tx) => repo.update(tx, 'a', () => Deposited.create({ amount: 1 })));
    }
    expect(
      (await store.transaction((tx) => store.loadStream(tx, 'account-a', { useSnapshot: true }))).snapshot
        ?.version,
    ).toBe(4);
    expect(await store.transaction((tx) => repo.load(tx, 'a'))).toMatchObject({
      version: 5,
      state: { balance: 5 },
    });
  });

  it('refuses an event the store holds but the repository does not know', async () => {
    const store = createInMemoryEventStore();
    const Stray = defineEvent('bank.stray').withPayload<{ x: number }>();
    await store.transaction((tx) =>
      store.appendToStream(tx, 'account-a', [Stray.create({ x: 1 }) as AnyEvent], { expectedVersion: 0 }),
    );
    const error = await store.transaction((tx) => accounts(store).load(tx, 'a')).catch((e: unknown) => e);
    expect(isCqrsError(error, 'CQRS_UNKNOWN_MESSAGE_TYPE')).toBe(true);
  });

  it('decodes log entries back into the events that were appended, with their metadata', async () => {
    const store = createInMemoryEventStore({
      outbox: createInMemoryOutboxStore({ compression: { algorithm: 'gzip', thresholdBytes: 1 } }),
    });
    const event = Deposited.create({ amount: 7 }, { correlationId: 'corr-1' });
    await store.transaction((tx) => store.appendToStream(tx, 's', [event], { expectedVersion: 'any' }));
    const [entry] = (await store.read()).entries;
    expect(entry!.contentEncoding).toBe('gzip');
    const decoded = await createLogDecoder().decode(entry!);
    expect(decoded).toMatchObject({
      type: 'bank.deposited',
      payload: { amount: 7 },
      metadata: { requestId: event.metadata.requestId, correlationId: 'corr-1' },
    });
  });
});

describe('in-memory state repository', () => {
  it('refuses a state it cannot copy with a SerializationError and keeps nothing', async () => {
    const outbox = createInMemoryOutboxStore();
    const repo = createInMemoryStateRepository<{ f: () => void }>({ name: 'thing' });
    const error = await outbox
      .transaction((tx) => repo.save(tx, 't', { f: () => {} }, { expectedVersion: 0 }))
      .catch((e: unknown) => e);
    expect(isCqrsError(error, 'CQRS_SERIALIZATION')).toBe(true);
    expect(repo.rows().size).toBe(0);
  });
});
