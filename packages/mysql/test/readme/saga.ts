import { createMysqlOutboxStore, createMysqlSagaStore, migrate } from '@cqrs-ts/mysql';
import { createSagaRunner, defineSaga, sagaContext } from '@cqrs-ts/saga';
import mysql from 'mysql2/promise';

const pool = mysql.createPool({ uri: process.env.DATABASE_URL ?? 'mysql://root@127.0.0.1:3306/test' });
await migrate(pool); // outbox, inbox, cqrs_saga, cqrs_saga_log
const store = createMysqlSagaStore({ client: pool, outbox: createMysqlOutboxStore({ client: pool }) });

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
await runner.recover();
await pool.end();
