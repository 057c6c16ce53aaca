import {
  createEventSourcedRepository,
  createInMemoryEventStore,
  createInMemoryStateRepository,
  createInMemoryUnitOfWork,
  createMediator,
  defineCommand,
  defineEvent,
  handle,
  isConcurrencyError,
  on,
  retry,
} from '@cqrs-ts/core';

// Event-sourced: the state is rebuilt from the stream's events by a pure evolve().
const Deposited = defineEvent('bank.deposited').withPayload<{ accountId: string; amount: number }>();
const Withdrawn = defineEvent('bank.withdrawn').withPayload<{ accountId: string; amount: number }>();
const Withdraw = defineCommand('bank.withdraw')
  .withPayload<{ accountId: string; amount: number }>()
  .returns<number>();

const eventStore = createInMemoryEventStore();
const accounts = createEventSourcedRepository({
  name: 'account',
  store: eventStore,
  events: [Deposited, Withdrawn],
  initialState: () => ({ balance: 0 }),
  evolve: (state, event) => ({
    balance: Deposited.is(event)
      ? state.balance + event.payload.amount
      : state.balance - event.payload.amount,
  }),
  snapshots: { every: 100 }, // optional: load replays at most 100 events
});

// State-based: a row with a version (a table of yours on Postgres, MariaDB or SQLite).
const limits = createInMemoryStateRepository<{ daily: number; used: number }>({ name: 'limit' });

const unitOfWork = createInMemoryUnitOfWork({ outbox: eventStore.outbox });
const mediator = createMediator({
  // a lost race is a ConcurrencyError: retry() re-runs the handler, which loads the new version
  behaviors: [retry({ maxAttempts: 3, retryOn: isConcurrencyError }), unitOfWork],
  handlers: [
    handle(Withdraw, async (cmd, ctx) => {
      const { accountId, amount } = cmd.payload;
      // the handler's context stands for the unit's transaction
      const limit = await limits.update(ctx, accountId, (l) => {
        const current = l ?? { daily: 500, used: 0 };
        if (current.used + amount > current.daily) throw new Error('daily limit reached');
        return { ...current, used: current.used + amount };
      });
      const { state } = await accounts.update(ctx, accountId, (account) => {
        if (account.balance < amount) throw new Error('insufficient funds');
        return Withdrawn.create({ accountId, amount });
      });
      console.log(`limit used: ${limit.state.used} (row version ${limit.version})`);
      return state.balance;
    }),
    on(Withdrawn, (e) => console.log(`after the commit: withdrawn ${e.payload.amount}`)),
  ],
});

// Prior history, appended with an expected version outside any handler.
await eventStore.transaction((tx) =>
  accounts.append(tx, 'acc-1', [Deposited.create({ accountId: 'acc-1', amount: 100 })], {
    expectedVersion: 0,
  }),
);
console.log(`balance: ${await mediator.send(Withdraw.create({ accountId: 'acc-1', amount: 30 }))}`);
const refused = await mediator
  .send(Withdraw.create({ accountId: 'acc-1', amount: 300 }))
  .catch((e: Error) => e);
console.log(`refused: ${(refused as Error).message}`);
const loaded = await eventStore.transaction((tx) => accounts.load(tx, 'acc-1'));
console.log(`acc-1 at version ${loaded.version}: ${loaded.state.balance}`);
