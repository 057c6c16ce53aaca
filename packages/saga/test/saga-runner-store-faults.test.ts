import { DatabaseSync } from 'node:sqlite';
import { uuidv7 } from '@cqrs-ts/core/spi';
import { createSagaRunner, defineSaga, sagaContext } from '@cqrs-ts/saga';
import { createSqliteSagaStore, migrate } from '@cqrs-ts/sqlite';
import { expect, it } from 'vitest';
import { crashingStore } from './support.ts';

const C = sagaContext<{ n: number }>();
const saga = defineSaga({
  name: 'corruptible',
  context: C,
  steps: [
    C.step({ id: 'a', act: () => 1 }),
    C.step({ id: 'b', act: () => 2 }),
    C.step({ id: 'c', act: () => 3 }),
  ],
});

it('recovery marks a saga whose log row a SQL store cannot read as failed, and recovers the others', async () => {
  const db = new DatabaseSync(':memory:');
  migrate(db);
  const store = createSqliteSagaStore({ database: db, onCorruptRow: () => {} });
  let clock = 1_000;
  const crashing = () =>
    createSagaRunner({
      store: crashingStore(store, { write: 3, when: 'before' }),
      leaseMs: 1_000,
      now: () => clock,
    });
  const bad = uuidv7();
  const good = uuidv7();
  await crashing()
    .run(saga, { n: 1 }, { id: bad })
    .catch(() => {});
  await crashing()
    .run(saga, { n: 2 }, { id: good })
    .catch(() => {});
  expect((await store.load(good))?.status).toBe('running');
  expect((await store.load(bad))?.status).toBe('running');
  // a value no reader accepts, as a faulty tool or disk could leave it
  db.prepare('UPDATE cqrs_saga_log SET started_at = -9223372036854775807 WHERE saga_id = ?').run(bad);
  clock += 5_000;
  const rescuer = createSagaRunner({ store, sagas: [saga], leaseMs: 1_000, now: () => clock });
  const report = await rescuer.recover();
  expect(report.completed).toBe(1);
  expect((await store.load(good))?.status).toBe('completed');
  expect((await store.load(bad))?.status).toBe('failed');
  expect((await rescuer.recover()).found).toBe(0);
  db.close();
});
