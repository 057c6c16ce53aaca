import { createInMemoryQueryCacheStore } from '@cqrs-ts/core';
import { describeQueryCacheStoreContract } from '@cqrs-ts/testing/contracts';

let n = 0;
describeQueryCacheStoreContract('in-memory', async () => {
  const store = createInMemoryQueryCacheStore();
  return { store: () => store, prefix: () => `t${n++}:`, async close() {} };
});
