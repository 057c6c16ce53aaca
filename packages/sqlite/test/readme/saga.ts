import { DatabaseSync } from 'node:sqlite';
import { createSagaRunner, defineSaga, sagaContext } from '@cqrs-ts/saga';
import { createSqliteOutboxStore, createSqliteSagaStore, migrate } from '@cqrs-ts/sqlite';

const db = new DatabaseSync(process.env.DATABASE_FILE ?? 'app.db');
db.exec('PRAGMA journal_mode = WAL; PRAGMA busy_timeout = 5000;');
migrate(db); // outbox, inbox, cqrs_saga, cqrs_saga_log
const store = createSqliteSagaStore({ database: db, outbox: createSqliteOutboxStore({ database: db }) });

const C = sagaContext<{ orderId: string }>();
const PlaceOrder = defineSaga({
  name: 'place-order',
  context: C,
  steps: [
    C.step({ id: 'reserve', act: async () => ({ reserved: true }), compensate: async () => {} }),
    C.step({ id: 'charge', act: async () => ({ paymentId: 'p-1' }), compensate: async () => {} }),
    C.step({ id: 'ship', act: async () => ({ tracking: 't-1' }) }),
  ],
});
const runner = createSagaRunner({ store, sagas: [PlaceOrder], outbox: true });
const { status } = await runner.run(PlaceOrder, { orderId: 'o-1' });
console.log(`o-1: ${status}`);
await runner.recover(); // in every worker, periodically: resumes sagas whose worker died
