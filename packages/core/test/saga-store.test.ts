import { createInMemoryOutboxStore, createInMemorySagaStore, type InMemorySagaStore } from '@cqrs-ts/core';
import { describeSagaStoreContract } from './support/saga-store-contract.ts';

let stores: InMemorySagaStore[] = [];
let shared = createInMemorySagaStore();
let outbox = createInMemoryOutboxStore();
let withOutbox = createInMemorySagaStore({ outbox });

describeSagaStoreContract('in-memory', async () => ({
  store: () => shared,
  outbox: {
    store: () => withOutbox,
    rows: async () => outbox.records().length,
  },
  async reset() {
    shared = createInMemorySagaStore();
    outbox = createInMemoryOutboxStore();
    withOutbox = createInMemorySagaStore({ outbox });
    stores = [shared, withOutbox];
  },
  async close() {
    for (const s of stores) s.clear();
  },
}));
