/**
 * The hand-written baseline of the `service` suite: a Fastify route over a pg pool that validates the order with
 * zod and, in one transaction, inserts the order row and an outbox row: the same insert into the same tables as
 * the orders service (the `orders` table, and `cqrs_outbox` made by `@cqrs-ts/postgres`'s `migrate`, with the
 * indexes a relay reads it by), with no unit of work, no per-key lock and no idempotency record (an
 * `Idempotency-Key` header is ignored). `raw-server.ts <database url>` listens on 127.0.0.1 and sends its port to
 * the parent.
 */
import { randomUUID } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { migrate } from '@cqrs-ts/postgres';
import Fastify from 'fastify';
import pg from 'pg';
import { z } from 'zod';

const PRICES: Record<string, number> = {
  'BOOK-1': 1_500,
  'MUG-3': 900,
  'PEN-2': 250,
  'RARE-1': 4_000,
  'LAMP-9': 250_000,
};
const schema = z.object({
  customerId: z.string().min(1).max(64),
  lines: z
    .array(
      z.object({
        sku: z.enum(Object.keys(PRICES) as [string, ...string[]]),
        quantity: z.number().int().min(1).max(1000),
      }),
    )
    .min(1)
    .max(50),
  address: z.string().min(1).max(200),
});

const pool = new pg.Pool({ connectionString: process.argv[2], max: 10 });
await migrate(pool);
await pool.query(`CREATE TABLE IF NOT EXISTS orders (id TEXT PRIMARY KEY, customer_id TEXT NOT NULL,
  lines TEXT NOT NULL, total_cents BIGINT NOT NULL, address TEXT NOT NULL, status TEXT NOT NULL,
  placed_at BIGINT NOT NULL)`);
const app = Fastify();
app.post('/orders', async (request, reply) => {
  const parsed = schema.safeParse(request.body);
  if (!parsed.success) return reply.code(400).send({ errors: parsed.error.issues });
  const { customerId, lines, address } = parsed.data;
  const orderId = `o-${randomUUID()}`;
  const totalCents = lines.reduce((sum, l) => sum + PRICES[l.sku]! * l.quantity, 0);
  const event = { orderId, customerId, lines, totalCents, address };
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    await client.query(
      'INSERT INTO orders (id, customer_id, lines, total_cents, address, status, placed_at) VALUES ($1, $2, $3, $4, $5, $6, $7)',
      [orderId, customerId, JSON.stringify(lines), totalCents, address, 'placed', Date.now()],
    );
    // the CloudEvents attributes a consumer needs, as the service's outbox rows carry them
    const id = randomUUID();
    const at = Date.now();
    const headers = JSON.stringify({
      specversion: '1.0',
      id,
      source: 'orders-service',
      type: 'orders.order-placed',
      time: new Date(at).toISOString(),
      datacontenttype: 'application/json',
      correlationid: id,
    });
    await client.query(
      `INSERT INTO cqrs_outbox (id, type, topic, key, payload, headers, content_encoding, next_attempt_at, created_at)
       VALUES ($1, 'orders.order-placed', 'orders', $2, $3, $4, 'identity', $5, $5)`,
      [id, orderId, Buffer.from(JSON.stringify(event)), headers, at],
    );
    await client.query('COMMIT');
  } catch (error) {
    await client.query('ROLLBACK');
    throw error;
  } finally {
    client.release();
  }
  return reply.code(201).send({ orderId });
});
await app.listen({ host: '127.0.0.1', port: 0 });
process.send!({ port: (app.server.address() as AddressInfo).port });
process.on('SIGTERM', () => void app.close().then(() => pool.end()));
