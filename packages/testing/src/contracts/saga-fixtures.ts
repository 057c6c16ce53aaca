import { type SagaCommit, type SagaLogEntryInput, type SagaStore, uuidv7 } from '@cqrs-ts/core/spi';

/** The clock of the saga fixtures, epoch ms. */
export const T0 = 1_700_000_000_000;
export const LEASE = 30_000;

/** A finished log entry of `stepId`. */
export const entry = (
  stepId: string,
  slot: number,
  over: Partial<SagaLogEntryInput> = {},
): SagaLogEntryInput => ({
  stepId,
  slot,
  action: 'act',
  status: 'completed',
  attempts: 1,
  result: JSON.stringify({ stepId }),
  error: null,
  startedAt: T0,
  at: T0 + 1,
  ...over,
});

/** Creates a running saga (`orders`, version 2, leased by `w1`); resolves to its id. */
export const createSaga = (
  store: SagaStore,
  over: { id?: string; name?: string; owner?: string; now?: number; context?: string | null } = {},
) => {
  const id = over.id ?? uuidv7();
  return store
    .create({
      id,
      name: over.name ?? 'orders',
      definitionVersion: 2,
      context: (over.context === undefined ? '{"orderId":"o-1"}' : over.context) as string,
      owner: over.owner ?? 'w1',
      now: over.now ?? T0,
      leaseMs: LEASE,
      deadlineAt: null,
    })
    .then(() => id);
};

/** A commit by `w1` of version 1: one step done, lease renewed. */
export const commitOf = (id: string, over: Partial<SagaCommit> = {}): SagaCommit => ({
  id,
  owner: 'w1',
  expectedVersion: 1,
  now: T0 + 10,
  status: 'running',
  context: '{"orderId":"o-1","reserved":true}',
  cursor: 1,
  error: null,
  log: [entry('reserve', 0)],
  lease: LEASE,
  ...over,
});
