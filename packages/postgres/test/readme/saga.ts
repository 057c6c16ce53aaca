import { createPostgresOutboxStore, createPostgresSagaStore, migrate } from '@cqrs-ts/postgres';
import { createSagaRunner, defineSaga, sagaContext } from '@cqrs-ts/saga';
import pg from 'pg';

const pool = new pg.Pool({
  connectionString: process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1/test',
});
await migrate(pool); // outbox, inbox, cqrs_saga and cqrs_saga_log (names configurable)
const store = createPostgresSagaStore({
  client: pool, // or a postgres.js sql, or a Kysely instance
  outbox: createPostgresOutboxStore({ client: pool }), // optional: step events staged in the step's commit
});

const C = sagaContext<{ orderId: string }>();
const PlaceOrder = defineSaga({
  name: 'place-order',
  context: C,
  steps: [
    C.step({
      id: 'reserve',
      act: async (ctx) => ({ reservation: `r-${ctx.orderId}` }),
      compensate: async () => {},
    }),
    C.step({ id: 'charge', act: async () => ({ paymentId: 'p-1' }), compensate: async () => {} }),
    C.step({ id: 'ship', act: async () => ({ tracking: 't-1' }) }),
  ],
});
const runner = createSagaRunner({ store, sagas: [PlaceOrder], outbox: true });
const { status } = await runner.run(PlaceOrder, { orderId: 'o-1' });
console.log(`o-1: ${status}`);
await runner.recover(); // in every worker, periodically: resumes sagas whose worker died
await pool.end();
