import {
  createInMemoryEventStore,
  createInMemoryOutboxStore,
  createInMemoryUnitOfWork,
  type InMemoryStoreTransaction,
} from '@cqrs-ts/core';
import { describeEventStoreContract } from '@cqrs-ts/testing/contracts';

const rollback = new Error('rollback');

describeEventStoreContract<InMemoryStoreTransaction>('in-memory', async () => {
  let outbox = createInMemoryOutboxStore();
  return {
    store: (options) => {
      outbox = createInMemoryOutboxStore({ archive: options?.archive ?? false });
      return createInMemoryEventStore({ outbox });
    },
    tx: (fn) => outbox.transaction(fn),
    rollback: (fn) =>
      outbox
        .transaction(async (tx) => {
          await fn(tx);
          throw rollback;
        })
        .catch((error: unknown) => {
          if (error !== rollback) throw error;
        }),
    concurrentTransactions: true,
    unitOfWork: () => createInMemoryUnitOfWork({ outbox }),
    async reset() {},
    async close() {},
  };
});
