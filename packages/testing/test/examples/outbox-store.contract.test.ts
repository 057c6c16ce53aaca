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
  // What a corrupted row looks like to the relay: the transaction receives hand-damaged records.
  async appendUnreadable(events, damage) {
    const tx = store.begin();
    const damaging: InMemoryOutboxTransaction = {
      append: (records) =>
        tx.append(
          records.map((r) =>
            damage === 'headers'
              ? { ...r, headers: 'not an object' as unknown as Record<string, string> }
              : damage === 'payload'
                ? { ...r, contentEncoding: 'gzip' as const, payload: new Uint8Array([1, 2, 3]) }
                : { ...r, contentEncoding: 'zstd' as 'gzip' },
          ),
        ),
      commit: () => tx.commit(),
      rollback: () => tx.rollback(),
    };
    await store.append(damaging, events);
    tx.commit();
  },
  reset: async () => {
    store = createInMemoryOutboxStore();
  },
  close: async () => {},
}));
