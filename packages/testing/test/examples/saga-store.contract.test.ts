import { createInMemoryOutboxStore, createInMemorySagaStore } from '@cqrs-ts/core';
import { describeSagaStoreContract } from '@cqrs-ts/testing/contracts';

let store = createInMemorySagaStore();
let outbox = createInMemoryOutboxStore();
let withOutbox = createInMemorySagaStore({ outbox });

describeSagaStoreContract('in-memory', async () => ({
  store: () => store,
  // a store that stages step events in an outbox, and how many rows that outbox holds
  outbox: { store: () => withOutbox, rows: async () => outbox.records().length },
  reset: async () => {
    store = createInMemorySagaStore();
    outbox = createInMemoryOutboxStore();
    withOutbox = createInMemorySagaStore({ outbox });
  },
  close: async () => {},
}));
