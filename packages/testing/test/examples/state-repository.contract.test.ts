import {
  createInMemoryOutboxStore,
  createInMemoryStateRepository,
  type InMemoryOutboxTransaction,
} from '@cqrs-ts/core';
import { type ContractAccount, describeStateRepositoryContract } from '@cqrs-ts/testing/contracts';

const outbox = createInMemoryOutboxStore();
let accounts = createInMemoryStateRepository<ContractAccount>({ name: 'account' });
const rollback = new Error('rollback');

describeStateRepositoryContract<InMemoryOutboxTransaction>('in-memory', async () => ({
  repository: () => accounts,
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
  async reset() {
    accounts = createInMemoryStateRepository<ContractAccount>({ name: 'account' });
  },
  async close() {},
}));
