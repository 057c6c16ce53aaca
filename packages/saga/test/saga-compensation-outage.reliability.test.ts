/**
 * A compensation's downstream service is down for 60 s, over Postgres, with the runner's default compensation
 * policy. The downstream is a real HTTP server in this process (a payment service with charge and refund,
 * idempotent by key) that is closed for 60 s, so every call meanwhile is refused at connect. The saga charges,
 * then fails at shipping: its refund keeps failing through the outage. A worker loop runs `recover()` every
 * second, as a deployment's recovery worker does; nobody calls `resume()`.
 * Then: the saga ends `compensated`, the refund happened once (after the service came back), at least one
 * recovery pass took the saga again after a pass had given up, and no saga needs an operator.
 */
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createPostgresSagaStore, migrate } from '@cqrs-ts/postgres';
import { createSagaRunner, defineSaga, type SagaFailedError, sagaContext } from '@cqrs-ts/saga';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { PG_URL, service, uniqueSuffix, waitFor } from '../../core/test/support/services.ts';

const available = await service('postgres', async () => {
  const c = new pg.Client({ connectionString: PG_URL, connectionTimeoutMillis: 2000 });
  await c.connect();
  await c.end();
});

const OUTAGE_MS = 60_000;
const sfx = `out_${uniqueSuffix}`;
const tables = { saga: `sg_${sfx}`, sagaLog: `sgl_${sfx}`, outbox: `ob_${sfx}`, inbox: `ib_${sfx}` };

/** The payment service: charges and refunds by idempotency key. */
function paymentService() {
  const charges = new Map<string, number>();
  const refunds = new Map<string, { at: number; times: number }>();
  const body = (req: IncomingMessage) =>
    new Promise<string>((resolve) => {
      let text = '';
      req.on('data', (c) => {
        text += c;
      });
      req.on('end', () => resolve(text));
    });
  const server: Server = createServer(async (req, res) => {
    const key = String(req.headers['idempotency-key'] ?? '');
    const { amount } = JSON.parse(await body(req)) as { amount: number };
    if (req.url === '/charge') charges.set(key, amount);
    else if (req.url === '/refund') {
      const seen = refunds.get(key);
      refunds.set(key, { at: seen?.at ?? Date.now(), times: (seen?.times ?? 0) + 1 });
    } else {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}');
  });
  return {
    charges,
    refunds,
    listen: (port: number) =>
      new Promise<number>((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, '127.0.0.1', () => {
          server.off('error', reject);
          resolve((server.address() as AddressInfo).port);
        });
      }),
    /** Stops accepting and drops open connections: callers get ECONNREFUSED until `listen` again. */
    stop: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

describe.skipIf(!available)('saga compensation through a 60 s downstream outage (postgres)', () => {
  const pool = new pg.Pool({ connectionString: PG_URL, max: 4 });
  pool.on('error', () => {});
  const payments = paymentService();
  afterAll(async () => {
    await payments.stop().catch(() => {});
    await pool.query(`DROP TABLE IF EXISTS ${Object.values(tables).join(', ')}`);
    await pool.end();
  });

  it('the saga ends compensated with the default policy and no operator action', async () => {
    await migrate(pool, { tables });
    const port = await payments.listen(0);
    const call = async (path: string, key: string, amount: number) => {
      const res = await fetch(`http://127.0.0.1:${port}${path}`, {
        method: 'POST',
        headers: { 'idempotency-key': key, 'content-type': 'application/json' },
        body: JSON.stringify({ amount }),
        signal: AbortSignal.timeout(5_000),
      });
      if (!res.ok) throw new Error(`${path}: HTTP ${res.status}`);
    };
    let outageStarted = 0;
    const Order = sagaContext<{ orderId: string; amount: number }>();
    const saga = defineSaga({
      name: `order-${sfx}`,
      context: Order,
      steps: [
        Order.step({
          id: 'charge',
          act: async (ctx, tools) => {
            await call('/charge', tools.idempotencyKey(), ctx.amount);
            return { paymentKey: tools.idempotencyKey() };
          },
          compensate: (ctx, _r, tools) => call('/refund', tools.idempotencyKey(), ctx.amount),
        }),
        Order.step({
          id: 'ship',
          act: async () => {
            // The warehouse refuses the order; the payment service goes down at the same moment.
            await payments.stop();
            outageStarted = Date.now();
            throw new Error('warehouse refused the order');
          },
        }),
      ],
    });
    const store = createPostgresSagaStore({ client: pool, tables });
    const errors: unknown[] = [];
    const runner = createSagaRunner({ store, sagas: [saga], onError: (e) => errors.push(e) });

    // The request that started the saga gets its answer once the first pass gave up.
    const failed = (await runner
      .run(saga, { orderId: 'o-1', amount: 42 })
      .catch((e: unknown) => e)) as SagaFailedError;
    expect(failed.status).toBe('compensation_failed');
    const id = failed.sagaId!;

    // The service comes back 60 s after it went down (the outage is the scenario, hence a timer).
    const back = new Promise<number>((resolve, reject) => {
      setTimeout(() => payments.listen(port).then(resolve, reject), outageStarted + OUTAGE_MS - Date.now());
    });
    // Meanwhile a recovery worker runs a pass every second until the saga is done.
    let passes = 0;
    await waitFor(
      async () => {
        passes += (await runner.recover()).found;
        if ((await store.load(id))?.status === 'compensated') return true;
        await new Promise((r) => setTimeout(r, 1_000)); // the worker's recovery interval
        return false;
      },
      OUTAGE_MS + 90_000,
      'the saga to be compensated',
    );
    await back;

    const record = await store.load(id);
    expect(record).toMatchObject({ status: 'compensated', leaseOwner: null, leaseUntil: null });
    const refund = payments.refunds.get(`${id}:charge:compensate`);
    expect(refund?.times).toBe(1);
    expect(refund!.at - outageStarted).toBeGreaterThanOrEqual(OUTAGE_MS);
    expect(passes).toBeGreaterThanOrEqual(1);
    const undo = (await store.history(id)).filter((e) => e.action === 'compensate');
    expect(undo.at(-1)?.status).toBe('completed');
    expect(undo.filter((e) => e.status === 'failed').length).toBeGreaterThanOrEqual(2);
    expect(await runner.health()).toEqual({ needsOperator: 0, retrying: 0, active: 0 });
    expect(errors).toEqual([]);
    console.log(
      `compensation outage: ${OUTAGE_MS / 1000} s down; compensated ${Math.round((refund!.at - outageStarted) / 1000)} s after the outage began, ` +
        `after ${undo.length - 1} failed passes (${undo.reduce((n, e) => n + e.attempts, 0)} attempts), ${passes} taken by recovery`,
    );
  }, 200_000);
});
