/**
 * Case runner of the `service` suite, on Postgres (a schema of its own per case, dropped after):
 * - `raw`: the hand-written Fastify + pg route (`raw-server.ts`, its own process);
 * - `service`: the orders service's `api` process (`examples/orders`, `--role=api`): validation, the unit of work
 *   with the order row, the outbox append and the `Idempotency-Key` record (a new key per request;
 *   `SERVICE_BENCH_NOKEY=1` sends none, to see what the key costs);
 * both loaded by autocannon over loopback (16 connections, 1 s warm-up, `SERVICE_BENCH_S` = 5 s measured), with
 *   the same requests (a new `Idempotency-Key` each, which the raw route ignores); the service case then also
 *   loads the two alternately (`x_paired`, `SERVICE_BENCH_PAIRS` pairs of 2 s, 0 for none);
 * - `projected:<rate>`: the whole service in this process (`--role=all` on Postgres + NATS), fed at a fixed rate
 *   for 2 s of warm-up, then for `SERVICE_BENCH_S`: the time from sending each order to the projection runner applying its
 *   `orders.order-placed` event (the order is in the projected list), its p99 in ms; `per_s` is the rate reached.
 */
import { fork, spawn } from 'node:child_process';
import http from 'node:http';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { alternately, median } from '../../lib/samples.ts';
import type { Metrics } from '../../lib/types.ts';

interface AutocannonResult {
  readonly requests: { readonly average: number };
  readonly latency: { readonly p99: number };
  readonly non2xx: number;
  readonly errors: number;
}
type Autocannon = (options: Record<string, unknown>) => Promise<AutocannonResult>;
const autocannon = createRequire(import.meta.url)('autocannon') as Autocannon;

const PG_URL = process.env.CQRS_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const NATS_URL = process.env.CQRS_NATS_URL ?? '127.0.0.1:4222';
const DURATION_S = Number(process.env.SERVICE_BENCH_S ?? 5);
/** Seconds of orders at the case's rate before the measured ones (`projected:<rate>` cases). */
const WARMUP_S = 2;
const RAW = fileURLToPath(new URL('./raw-server.ts', import.meta.url));
const MAIN = fileURLToPath(new URL('../../../../examples/orders/src/service/main.ts', import.meta.url));
const ORDER = JSON.stringify({
  customerId: 'c-1',
  lines: [{ sku: 'BOOK-1', quantity: 2 }],
  address: 'Main St 1',
});

async function withSchema<T>(fn: (url: string, name: string) => Promise<T>, tag = 'all'): Promise<T> {
  const name = `bench_service_${tag}_${process.pid}`;
  const admin = new pg.Pool({ connectionString: PG_URL, max: 1 });
  await admin.query(`DROP SCHEMA IF EXISTS ${name} CASCADE`);
  await admin.query(`CREATE SCHEMA ${name}`);
  try {
    return await fn(`${PG_URL}?options=${encodeURIComponent(`-c search_path=${name}`)}`, name);
  } finally {
    await admin.query(`DROP SCHEMA ${name} CASCADE`).catch(() => {});
    await admin.end();
  }
}

/** Idempotency keys of this process: never the same twice, across runs (a repeated key is a cheap replay). */
let keys = 0;

async function load(url: string, keyed: boolean, seconds = DURATION_S, warm = true): Promise<Metrics> {
  const request = {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: ORDER,
    ...(keyed
      ? {
          setupRequest: (r: { headers: Record<string, string> }) => {
            r.headers = { ...r.headers, 'idempotency-key': `k-${process.pid}-${++keys}` };
            return r;
          },
        }
      : {}),
  };
  const result = await autocannon({
    url: `${url}/orders`,
    connections: 16,
    duration: seconds,
    ...(warm ? { warmup: { connections: 16, duration: 1 } } : {}),
    requests: [request],
  });
  if (result.errors > 0 || result.non2xx > 0)
    throw new Error(`service bench: ${result.errors} errors, ${result.non2xx} non-2xx answers`);
  return { per_s: result.requests.average, p99_ms: result.latency.p99 };
}

/** `SERVICE_BENCH_NOKEY=1`: no Idempotency-Key on either side. */
const keyed = process.env.SERVICE_BENCH_NOKEY !== '1';

/** Runs `fn` with the hand-written server up, on a schema of its own, and its URL. */
async function withRaw<T>(fn: (url: string) => Promise<T>): Promise<T> {
  return withSchema(async (db) => {
    const child = fork(RAW, [db], {
      execArgv: ['--conditions=@cqrs-ts/source'],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    try {
      const port = await new Promise<number>((resolve, reject) => {
        child.once('message', (m) => resolve((m as { port: number }).port));
        child.once('exit', (code) => reject(new Error(`raw server exited with ${code}`)));
      });
      return await fn(`http://127.0.0.1:${port}`);
    } finally {
      child.kill();
    }
  }, 'raw');
}

const serviceEnv = (url: string, name: string) => ({
  ...process.env,
  ORDERS_STORAGE: 'postgres',
  DATABASE_URL: url,
  ORDERS_PG_POOL_SIZE: '10',
  ORDERS_BROKER: 'nats',
  NATS_SERVERS: NATS_URL,
  ORDERS_NATS_STREAM: name.toUpperCase(),
  ORDERS_NATS_SUBJECT_PREFIX: name.replace(/_/g, '-'),
  ORDERS_PORT: '0',
  ORDERS_LOG_LEVEL: 'error',
});

/** Runs `fn` with the orders service's api process up, on a schema of its own, and its URL. */
async function withService<T>(fn: (url: string) => Promise<T>): Promise<T> {
  return withSchema(async (db, name) => {
    const child = spawn(process.execPath, ['--conditions=@cqrs-ts/source', MAIN, '--role=api'], {
      env: serviceEnv(db, name),
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    try {
      const api = await new Promise<string>((resolve, reject) => {
        let out = '';
        child.stdout!.on('data', (chunk: Buffer) => {
          out += chunk.toString();
          const m = /^API: +(\S+)\/orders$/m.exec(out);
          if (m !== null && /^ready$/m.test(out)) resolve(m[1]!);
        });
        child.once('exit', (code) => reject(new Error(`orders service exited with ${code}: ${out}`)));
      });
      return await fn(api);
    } finally {
      child.kill('SIGTERM');
    }
  }, 'svc');
}

// Both sides get the same requests, a new Idempotency-Key each (the raw route ignores it): building them costs
// the load generator, which shares the 2 cores, as much on both sides.
const raw = (): Promise<Metrics> => withRaw((url) => load(url, keyed));

/** Pairs of 2 s runs, hand-written route and service alternately (each goes first every other pair). */
const PAIRS = Number(process.env.SERVICE_BENCH_PAIRS ?? 5);

/**
 * The service's own run, then `x_paired`: the median over {@link PAIRS} pairs of its orders/s over the hand-written
 * route's, the two servers up together and loaded alternately for 2 s each, after a run of the raw route as long
 * as the service's own (both as warm). Runs measured in separate processes moved by 30% with no code change on
 * the shared 2-core machine.
 */
async function service(): Promise<Metrics> {
  return withService(async (api) => {
    const own = await load(api, keyed);
    if (PAIRS === 0) return own;
    const runs = await withRaw(async (rawUrl) => {
      await load(rawUrl, keyed, DURATION_S); // as long a run as the service's own: both as warm
      return alternately(
        PAIRS,
        () => load(rawUrl, keyed, 2, false),
        () => load(api, keyed, 2, false),
      );
    });
    return { ...own, x_paired: median(runs.b.map((s, i) => s.per_s! / runs.a[i]!.per_s!)) };
  });
}

/** POSTs an order on a keep-alive agent of at most 64 sockets (queued beyond: the latency counts the wait). */
const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
function post(url: string): Promise<{ orderId: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      url,
      { method: 'POST', agent, headers: { 'content-type': 'application/json' } },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          body += chunk;
        });
        res.on('end', () =>
          res.statusCode === 201 ? resolve(JSON.parse(body)) : reject(new Error(`${res.statusCode} ${body}`)),
        );
      },
    );
    req.on('error', reject);
    req.end(ORDER);
  });
}

async function projected(rate: number): Promise<Metrics> {
  return withSchema(async (url, name) => {
    Object.assign(process.env, serviceEnv(url, name));
    const { loadConfig } = await import('../../../../examples/orders/src/service/config.ts');
    const { startOrdersService } = await import('../../../../examples/orders/src/service/service.ts');
    const running = await startOrdersService(loadConfig(process.env), { roles: new Set(['all']) });
    const projectedAt = new Map<string, number>();
    const sentAt = new Map<string, number>();
    const unsubscribe = running.parts.runner!.subscribe('order-view', (change) => {
      const now = performance.now();
      for (const { event } of change.events)
        if (event.type === 'orders.order-placed')
          projectedAt.set((event.payload as { orderId: string }).orderId, now);
    });
    try {
      // At the same rate, first WARMUP_S seconds that are not measured (as the autocannon cases warm up for 1 s):
      // the p99 is that of the service running, not of its first compilations and connections.
      const feed = async (seconds: number, record: boolean) => {
        const total = rate * seconds;
        const started = performance.now();
        const inFlight: Promise<void>[] = [];
        for (let i = 0; i < total; i++) {
          const due = started + (i * 1000) / rate;
          const wait = due - performance.now();
          if (wait > 1) await new Promise((resolve) => setTimeout(resolve, wait));
          const t0 = performance.now();
          const placed = post(`${running.url}/orders`);
          inFlight.push(
            record ? placed.then(({ orderId }) => void sentAt.set(orderId, t0)) : placed.then(() => {}),
          );
        }
        await Promise.all(inFlight);
        return { total, elapsed: (performance.now() - started) / 1000 };
      };
      await feed(WARMUP_S, false);
      const { total, elapsed } = await feed(DURATION_S, true);
      const deadline = performance.now() + 60_000;
      while ([...sentAt.keys()].some((id) => !projectedAt.has(id))) {
        if (performance.now() > deadline) throw new Error('service bench: orders not projected within 60 s');
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      const latencies = [...sentAt].map(([id, t0]) => projectedAt.get(id)! - t0).sort((a, b) => a - b);
      return { per_s: total / elapsed, ms: latencies[Math.ceil(latencies.length * 0.99) - 1]! };
    } finally {
      unsubscribe();
      agent.destroy();
      await running.stop();
    }
  });
}

/** Runs one case: `raw`, `service` or `projected:<orders per second>`. */
export async function run(variant: string): Promise<Metrics> {
  if (variant === 'raw') return raw();
  if (variant === 'service') return service();
  if (variant.startsWith('projected:')) return projected(Number(variant.slice('projected:'.length)));
  throw new Error(`service bench: unknown case ${variant}`);
}
