import { createInMemoryOutboxStore, type InMemoryOutboxTransaction } from '@cqrs-ts/core';
import { describeOutboxStoreContract } from '@cqrs-ts/testing/contracts';

let store = createInMemoryOutboxStore();

describeOutboxStoreContract<InMemoryOutboxTransaction>('in-memory', async () => ({
  store: (options) => (store = createInMemoryOutboxStore(options)),
  tx: (fn) => store.transaction(fn),
  async rollback(fn) {
    const tx = store.begin();
    await fn(tx);
    tx.rollback();
  },
  rows: async () => store.records(),
  reset: async () => {
    store = createInMemoryOutboxStore();
  },
  close: async () => {},
}));
