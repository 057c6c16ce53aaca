import {
  createInMemoryInboxGuard,
  createInMemoryInboxStore,
  type InMemoryInboxTransaction,
} from '@cqrs-ts/core';
import { describeInboxContract } from '@cqrs-ts/testing/contracts';

let inbox = createInMemoryInboxStore();
let effects = 0;

describeInboxContract<InMemoryInboxTransaction>('in-memory', async () => ({
  get inbox() {
    return inbox;
  },
  tx: (fn) => inbox.transaction(fn),
  // an effect counts only once its transaction commits, like a row written in it
  recordEffect: async (tx) => tx.onCommit(() => effects++),
  effects: async () => effects,
  guard: () => createInMemoryInboxGuard({ store: inbox }),
  reset: async () => {
    inbox = createInMemoryInboxStore();
    effects = 0;
  },
  close: async () => {},
}));
