import {
  createInMemoryEventStore,
  createInMemoryOutboxStore,
  createInMemoryProjectionStore,
  createInMemoryUnitOfWork,
  type InMemoryTransaction,
} from '@cqrs-ts/core';
import { describeProjectionContract } from '@cqrs-ts/testing/contracts';

describeProjectionContract<InMemoryTransaction>('in-memory', async () => {
  let outbox = createInMemoryOutboxStore();
  let store = createInMemoryProjectionStore();
  let log = createInMemoryEventStore({ outbox });
  const tables = new Map<string, Map<string, number>>();
  return {
    eventStore: () => log as never,
    projectionStore: () => store,
    tx: (fn) => outbox.transaction(fn as never) as never,
    counters: {
      async create(table) {
        tables.set(table, new Map());
      },
      async bump(tx, table, id) {
        tx.onCommit(() => {
          const t = tables.get(table)!;
          t.set(id, (t.get(id) ?? 0) + 1);
        });
      },
      async read(table) {
        return new Map(tables.get(table));
      },
      async clear(tx, table) {
        tx.onCommit(() => tables.get(table)!.clear());
      },
    },
    unitOfWork: (_log, projections) => createInMemoryUnitOfWork({ outbox, projections }) as never,
    concurrentTransactions: true,
    async reset() {
      outbox = createInMemoryOutboxStore();
      store = createInMemoryProjectionStore();
      log = createInMemoryEventStore({ outbox });
      tables.clear();
    },
    async close() {},
  };
});
