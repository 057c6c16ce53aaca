/**
 * The hand-written baseline of the `service` suite: a Fastify route over a pg pool that validates the order with
 * zod and, in one transaction, inserts the order row and an outbox row (the same tables and row shapes as the
 * orders service, no unit of work, no idempotency key). `raw-server.ts <database url>` listens on 127.0.0.1 and
 * sends its port to the parent.
 */
import { randomUUID } from 'node:crypto';
import type { AddressInfo } from 'node:net';
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
await pool.query(`
CREATE TABLE IF NOT EXISTS orders (id TEXT PRIMARY KEY, customer_id TEXT NOT NULL, lines TEXT NOT NULL,
  total_cents BIGINT NOT NULL, address TEXT NOT NULL, status TEXT NOT NULL, placed_at BIGINT NOT NULL);
CREATE TABLE IF NOT EXISTS raw_outbox (seq BIGSERIAL PRIMARY KEY, id TEXT NOT NULL, type TEXT NOT NULL,
  topic TEXT NOT NULL, key TEXT, headers TEXT NOT NULL, payload BYTEA NOT NULL, status TEXT NOT NULL,
  created_at BIGINT NOT NULL);`);

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
    await client.query(
      `INSERT INTO raw_outbox (id, type, topic, key, headers, payload, status, created_at)
       VALUES ($1, 'orders.order-placed', 'orders', $2, $3, $4, 'pending', $5)`,
      [
        randomUUID(),
        orderId,
        JSON.stringify({ specversion: '1.0', source: 'orders-service', type: 'orders.order-placed' }),
        Buffer.from(JSON.stringify(event)),
        Date.now(),
      ],
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
