/**
 * Reliability of the NATS publisher and consumer against real failures: nats-server killed for ~10 s mid-flow
 * (relay + publisher keep retrying, the consumer resumes by itself), a consumer process SIGKILLed inside a
 * handler and after its commit (redelivered, one effect through the inbox), and an end-to-end flow from a
 * command through the Postgres outbox and NATS to a consumer in another process. Runs alone
 * (vitest.reliability.config.ts); every test leaves nats-server running, also on failure.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import {
  type AnyEvent,
  correlation,
  createInMemoryOutboxStore,
  createMediator,
  createOutboxRelay,
  defineCommand,
  defineEvent,
  handle,
  runWithContext,
} from '@cqrs-ts/core';
import { createNatsConsumer, createNatsPublisher, ensureNatsStream } from '@cqrs-ts/nats';
import { createPostgresOutboxStore, migrate } from '@cqrs-ts/postgres';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import {
  describeOutage,
  expectOutageSurvived,
  OUTAGE_MS,
  OUTAGE_TEST_TIMEOUT_MS,
  runOutageFlow,
} from '../../core/test/support/outage-flow.ts';
import { PG_URL, service } from '../../core/test/support/services.ts';
import {
  connectTest,
  deleteStreams,
  killNats,
  NATS_URL,
  natsAvailable,
  natsPid,
  natsReady,
  readStream,
  sleep,
  startNats,
  startPrivateNats,
  unique,
  until,
} from './support.ts';

const Ticked = defineEvent('natsr.ticked', {
  topic: 'ticks',
  key: (p: { k: string; n: number; crash?: string }) => p.k,
}).withPayload<{ k: string; n: number; crash?: string }>();

const pgAvailable = natsAvailable
  ? await service('postgres', async () => {
      const c = new pg.Client({ connectionString: PG_URL, connectionTimeoutMillis: 2000 });
      await c.connect();
      await c.end();
    })
  : false;
const canRestart = natsAvailable && natsPid() !== undefined;
if (natsAvailable && !canRestart)
  console.warn('SKIP nats restart tests: no local nats-server process to kill');

const fixture = fileURLToPath(new URL('./fixtures/consumer-child.ts', import.meta.url));

interface Child {
  readonly process: ChildProcess;
  readonly lines: string[];
  readonly handled: Array<Record<string, unknown>>;
  stderr(): string;
  waitFor(prefix: string, timeoutMs: number): Promise<string>;
}

function spawnConsumer(env: Record<string, string>): Promise<Child> {
  const child = spawn(process.execPath, ['--conditions=@cqrs-ts/source', fixture], {
    env: { ...process.env, CHILD_NATS_URL: NATS_URL, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: string[] = [];
  const handled: Array<Record<string, unknown>> = [];
  let stderr = '';
  let buffer = '';
  child.stdout!.on('data', (d: Buffer) => {
    buffer += d.toString();
    let i = buffer.indexOf('\n');
    while (i >= 0) {
      const line = buffer.slice(0, i);
      buffer = buffer.slice(i + 1);
      lines.push(line);
      if (line.startsWith('{'))
        handled.push((JSON.parse(line) as { handled: Record<string, unknown> }).handled);
      i = buffer.indexOf('\n');
    }
  });
  child.stderr!.on('data', (d: Buffer) => {
    stderr = (stderr + d.toString()).slice(-4000);
  });
  const result: Child = {
    process: child,
    lines,
    handled,
    stderr: () => stderr,
    async waitFor(prefix, timeoutMs) {
      await until(
        () => {
          if (child.exitCode !== null)
            throw new Error(`consumer child exited (${child.exitCode}): ${stderr}`);
          return lines.some((l) => l.startsWith(prefix));
        },
        timeoutMs,
        `child output "${prefix}"`,
      );
      return lines.find((l) => l.startsWith(prefix))!;
    },
  };
  return result.waitFor('ready', 30_000).then(() => result);
}

async function kill(child: Child, signal: NodeJS.Signals): Promise<void> {
  const p = child.process;
  if (p.exitCode !== null || p.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => p.once('exit', () => resolve()));
  p.kill(signal);
  await exited;
}

describe.skipIf(!natsAvailable)('nats reliability', () => {
  it.skipIf(!canRestart)(
    'nats-server down for 10 s mid-flow: the relay and publisher retry, the consumer resumes, nothing is lost',
    async () => {
      const stream = unique('REL');
      const prefix = stream.toLowerCase();
      const admin = await connectTest();
      await ensureNatsStream({ connection: admin, name: stream, subjects: [`${prefix}.>`] });
      const publisher = await createNatsPublisher({
        servers: NATS_URL,
        subjectPrefix: prefix,
        timeoutMs: 2000,
      });
      const store = createInMemoryOutboxStore();
      const relay = createOutboxRelay({
        store,
        publisher,
        batchSize: 100,
        pollIntervalMs: 20,
        maxAttempts: 1000,
        backoff: { initialMs: 100, maxMs: 1000, factor: 2 },
      });
      const consumed = new Set<string>();
      const order = new Map<string, number>();
      let outOfOrder = 0;
      const consumer = createNatsConsumer({
        servers: NATS_URL,
        stream,
        name: 'outage',
        concurrency: 8,
        handle: (e) => {
          const { k, n } = e.payload as { k: string; n: number };
          if (!consumed.has(e.metadata.requestId) && n < (order.get(k) ?? 0)) outOfOrder++;
          order.set(k, Math.max(order.get(k) ?? 0, n));
          consumed.add(e.metadata.requestId);
        },
      });
      const appended: string[] = [];
      const next = new Map<string, number>();
      let appending = true;
      const append = (async () => {
        while (appending) {
          const events = Array.from({ length: 10 }, (_, i) => {
            const k = `k${i % 5}`;
            const n = next.get(k) ?? 0;
            next.set(k, n + 1);
            return Ticked.create({ k, n }) as AnyEvent;
          });
          const tx = store.begin();
          await store.append(tx, events);
          tx.commit();
          for (const e of events) appended.push(e.metadata.requestId);
          await sleep(20);
        }
      })();
      let downFor = 0;
      let restarts = 0;
      let publishFailures = 0;
      relay.start();
      await consumer.start();
      try {
        await until(() => consumed.size >= 300, 30_000, 'events to flow before the outage');
        await killNats();
        const downAt = Date.now();
        await sleep(10_000);
        const appendedWhileDown = appended.length;
        await startNats();
        downFor = Date.now() - downAt;
        await until(() => appended.length >= appendedWhileDown + 300, 30_000, 'appends after the restart');
        appending = false;
        await append;
        await until(() => appended.every((id) => consumed.has(id)), 90_000, 'every appended event consumed');
        // the consumer can see the last batch before the relay has its acks and marks the rows published
        await until(async () => (await relay.health()).backlog === 0, 30_000, 'the relay to mark every row');
        const health = await relay.health();
        expect(health.backlog).toBe(0);
        expect(health.running).toBe(true);
        restarts = consumer.health().reconnects;
        publishFailures = publisher.health().failed;
        expect(consumer.health().connected).toBe(true);
      } finally {
        appending = false;
        await append.catch(() => {});
        if (natsPid() === undefined || !(await natsReady())) await startNats();
        await relay.stop();
        await consumer.stop();
        await publisher.close();
      }
      // The stream holds each event exactly once (re-publishes dropped by Nats-Msg-Id), in key order.
      const stored = await readStream(admin, stream);
      const ids = stored.map((m) => m.headers!.get('Nats-Msg-Id'));
      expect(new Set(ids).size).toBe(ids.length);
      expect(ids.length).toBe(appended.length);
      const perKey = new Map<string, number>();
      for (const m of stored) {
        const { k, n } = JSON.parse(new TextDecoder().decode(m.data)) as { k: string; n: number };
        expect(n).toBe(perKey.get(k) ?? 0);
        perKey.set(k, n + 1);
      }
      expect(outOfOrder).toBe(0);
      await deleteStreams(await jetstreamManager(admin), stream, `${stream}_DLQ`);
      await admin.close();
      console.log(
        `outage test: ${appended.length} events, nats down ${downFor} ms, ${publishFailures} failed publishes retried by the relay, ${restarts} consumer restarts`,
      );
    },
    180_000,
  );

  it.skipIf(!pgAvailable)(
    'a consumer SIGKILLed inside a handler or before its ack: redelivered, one effect through the inbox',
    async () => {
      const stream = unique('KIL');
      const prefix = stream.toLowerCase();
      const admin = await connectTest();
      const pool = new pg.Pool({ connectionString: PG_URL, max: 2 });
      const sfx = stream.toLowerCase();
      const tables = { outbox: `nrob_${sfx}`, inbox: `nrib_${sfx}` };
      const effects = `nrfx_${sfx}`;
      const children: Child[] = [];
      try {
        await ensureNatsStream({ connection: admin, name: stream, subjects: [`${prefix}.>`] });
        await migrate(pool, { tables });
        await pool.query(`CREATE TABLE ${effects} (event_id TEXT NOT NULL)`);
        const publisher = await createNatsPublisher({ connection: admin, subjectPrefix: prefix });
        const inHandler = Ticked.create({ k: 'a', n: 0, crash: 'in-handler' });
        const afterCommit = Ticked.create({ k: 'b', n: 0, crash: 'after-commit' });
        const plain = Array.from({ length: 10 }, (_, n) => Ticked.create({ k: `c${n}`, n }));
        const env = {
          CHILD_STREAM: stream,
          CHILD_NAME: 'killed',
          CHILD_PG_URL: PG_URL,
          CHILD_INBOX: tables.inbox,
          CHILD_EFFECTS: effects,
        };
        // First child: dies inside the handler (nothing committed).
        const first = await spawnConsumer({ ...env, CHILD_CRASH: 'in-handler' });
        children.push(first);
        expect((await publisher.publishEvents([inHandler])).every((r) => r.ok)).toBe(true);
        await first.waitFor(`in-handler ${inHandler.metadata.requestId}`, 15_000);
        await kill(first, 'SIGKILL');
        // Second child: commits the effect of `afterCommit`, then dies before the ack.
        const second = await spawnConsumer({ ...env, CHILD_CRASH: 'after-commit' });
        children.push(second);
        await until(
          () => second.handled.some((h) => h.id === inHandler.metadata.requestId),
          15_000,
          'redelivery',
        ).catch((error: Error) => {
          throw new Error(
            `${error.message}; second child said: ${second.lines.join(' | ')} ${second.stderr()}`,
          );
        });
        expect((await publisher.publishEvents([afterCommit, ...plain])).every((r) => r.ok)).toBe(true);
        await second.waitFor(`committed ${afterCommit.metadata.requestId}`, 15_000);
        await kill(second, 'SIGKILL');
        // Third child: gets `afterCommit` again (never acked): the inbox says duplicate, no second effect.
        const third = await spawnConsumer(env);
        children.push(third);
        const all = [inHandler, afterCommit, ...plain].map((e) => e.metadata.requestId);
        const effectIds = async () =>
          (await pool.query(`SELECT event_id FROM ${effects}`)).rows.map((r) => r.event_id as string);
        await until(async () => (await effectIds()).length >= all.length, 20_000, 'every effect');
        await sleep(1500); // longer than ackWait: a missing ack would show up as a redelivery
        const ids = await effectIds();
        expect(ids.sort()).toEqual([...all].sort());
        const info = await (await jetstreamManager(admin)).consumers.info(stream, 'killed');
        expect(info.num_ack_pending + info.num_pending).toBe(0);
        // The third child got `afterCommit` again, found it in the inbox and did not run the handler.
        await third.waitFor(`duplicate ${afterCommit.metadata.requestId}`, 10_000);
        expect(third.handled.some((h) => h.id === afterCommit.metadata.requestId)).toBe(false);
        await publisher.close();
      } finally {
        for (const c of children) await kill(c, 'SIGKILL');
        await pool
          .query(`DROP TABLE IF EXISTS ${tables.outbox}, ${tables.inbox}, ${effects}`)
          .catch(() => {});
        await pool.end();
        await deleteStreams(await jetstreamManager(admin), stream, `${stream}_DLQ`);
        await admin.close();
      }
    },
    120_000,
  );

  it.skipIf(!pgAvailable)(
    'end to end: command -> Postgres outbox -> relay -> NATS -> consumer in another process, same trace and correlation',
    async () => {
      const stream = unique('E2E');
      const prefix = stream.toLowerCase();
      const admin = await connectTest();
      const pool = new pg.Pool({ connectionString: PG_URL, max: 4 });
      const sfx = stream.toLowerCase();
      const tables = { outbox: `neob_${sfx}`, inbox: `neib_${sfx}` };
      const orders = `neorders_${sfx}`;
      let child: Child | undefined;
      try {
        await ensureNatsStream({ connection: admin, name: stream, subjects: [`${prefix}.>`] });
        await migrate(pool, { tables });
        await pool.query(`CREATE TABLE ${orders} (id TEXT PRIMARY KEY)`);
        const outbox = createPostgresOutboxStore({ client: pool, tables, notifyChannel: false });
        const OrderPlaced = defineEvent('e2e.order-placed', {
          topic: 'orders',
          key: (p: { orderId: string }) => p.orderId,
        }).withPayload<{ orderId: string }>();
        const PlaceOrder = defineCommand('e2e.place-order')
          .withPayload<{ orderId: string }>()
          .returns<string>();
        const mediator = createMediator({
          behaviors: [correlation()],
          handlers: [
            handle(PlaceOrder, async (cmd) => {
              const c = await pool.connect();
              try {
                await c.query('BEGIN');
                await c.query(`INSERT INTO ${orders} (id) VALUES ($1)`, [cmd.payload.orderId]);
                const event = OrderPlaced.create({ orderId: cmd.payload.orderId });
                await outbox.append(c, [event]);
                await c.query('COMMIT');
                return event.metadata.requestId;
              } catch (error) {
                await c.query('ROLLBACK');
                throw error;
              } finally {
                c.release();
              }
            }),
          ],
        });
        child = await spawnConsumer({ CHILD_STREAM: stream, CHILD_NAME: 'e2e' });
        const publisher = await createNatsPublisher({ connection: admin, subjectPrefix: prefix });
        const relay = createOutboxRelay({ store: outbox, publisher, pollIntervalMs: 50 });
        relay.start();
        const traceparent = '00-5c3e1f0a9b8d4e2f8a7b6c5d4e3f2a1b-1a2b3c4d5e6f7a8b-01';
        const command = runWithContext({ correlationId: 'e2e-corr-7', traceparent }, () =>
          PlaceOrder.create({ orderId: 'o-1' }),
        );
        const eventId = await mediator.send(command);
        expect((await pool.query(`SELECT id FROM ${orders}`)).rows).toEqual([{ id: 'o-1' }]);
        await until(() => child!.handled.length === 1, 20_000, 'the consumer process to handle the event');
        await relay.stop();
        await publisher.close();
        const got = child.handled[0]!;
        expect(got.id).toBe(eventId);
        expect(got.type).toBe('e2e.order-placed');
        expect(got.payload).toEqual({ orderId: 'o-1' });
        expect(got.correlationId).toBe('e2e-corr-7');
        expect(got.correlationId).toBe(command.metadata.correlationId);
        expect(got.traceparent).toBe(traceparent);
        expect(got.causationId).toBe(command.metadata.requestId);
        expect(got.contextCausationId).toBe(eventId);
      } finally {
        if (child !== undefined) await kill(child, 'SIGTERM');
        await pool.query(`DROP TABLE IF EXISTS ${tables.outbox}, ${tables.inbox}, ${orders}`).catch(() => {});
        await pool.end();
        await deleteStreams(await jetstreamManager(admin), stream, `${stream}_DLQ`);
        await admin.close();
      }
    },
    60_000,
  );

  it('the publisher tells onAvailable listeners when its connection is back after a server restart (a relay probes at once)', async () => {
    const server = await startPrivateNats();
    const publisher = await createNatsPublisher({
      servers: server.url,
      subjectPrefix: unique('AVAIL').toLowerCase(),
    });
    let told = 0;
    let removedTold = 0;
    publisher.onAvailable(() => {
      told++;
    });
    const remove = publisher.onAvailable(() => {
      removedTold++;
    });
    remove();
    try {
      await server.kill();
      await until(() => !publisher.health().connected, 20_000, 'the publisher to see the connection lost');
      expect(told).toBe(0);
      await server.start();
      await until(() => told > 0, 20_000, 'the listener to hear the reconnection');
      expect(publisher.health().connected).toBe(true);
      expect(removedTold).toBe(0);
    } finally {
      await publisher.close();
      await server.dispose();
    }
  }, 60_000);

  it('a connection the publisher opened that gave up reconnecting (maxReconnectAttempts spent) is replaced once the server is back: publishing resumes instead of failing as closed for good', async () => {
    const server = await startPrivateNats();
    const stream = unique('REOPEN');
    const prefix = stream.toLowerCase();
    const admin = await connect({ servers: server.url, maxReconnectAttempts: -1, reconnectTimeWait: 100 });
    const publisher = await createNatsPublisher({
      servers: server.url,
      subjectPrefix: prefix,
      timeoutMs: 1000,
      connectionOptions: { maxReconnectAttempts: 2, reconnectTimeWait: 100, reconnectJitter: 0 },
    });
    const one = async () => {
      const [r] = await publisher.publishEvents([Ticked.create({ k: 'a', n: 0 }) as AnyEvent]);
      return r!;
    };
    try {
      await ensureNatsStream({ connection: admin, name: stream, subjects: [`${prefix}.>`] });
      expect(await one()).toEqual({ ok: true });
      await server.kill();
      // the client spends its two attempts and closes its connection
      await until(
        async () => {
          const r = await one();
          return !r.ok && (r.error as { reason?: string }).reason === 'closed';
        },
        20_000,
        'the connection to close',
      );
      await server.start();
      await until(async () => (await one()).ok, 20_000, 'publishing on a new connection');
      expect(publisher.health().connected).toBe(true);
    } finally {
      await publisher.close();
      await jetstreamManager(admin)
        .then((jsm) => deleteStreams(jsm, stream))
        .catch(() => {});
      await admin.close().catch(() => {});
      await server.dispose();
    }
  }, 60_000);

  it.skipIf(!pgAvailable)(
    `outage of ${OUTAGE_MS / 1000} s (a private nats-server killed) under 500 events/s through the Postgres outbox: nothing dead or lost, key order kept, the backlog drains at once`,
    async () => {
      const server = await startPrivateNats();
      const stream = unique('OUT');
      const prefix = stream.toLowerCase();
      const pool = new pg.Pool({ connectionString: PG_URL, max: 4 });
      const admin = await connect({ servers: server.url, maxReconnectAttempts: -1, reconnectTimeWait: 250 });
      const publisher = await createNatsPublisher({
        servers: server.url,
        subjectPrefix: prefix,
        timeoutMs: 2000,
      });
      try {
        await ensureNatsStream({ connection: admin, name: stream, subjects: [`${prefix}.>`] });
        const result = await runOutageFlow({
          label: 'nats',
          pool,
          topic: 'ticks',
          publisher,
          direct: publisher,
          async consume(handle) {
            const consumer = createNatsConsumer({ servers: server.url, stream, name: 'outage', handle });
            await consumer.start();
            return consumer;
          },
          down: () => server.kill(),
          up: () => server.start(),
        });
        console.info(describeOutage('nats', result));
        expectOutageSurvived(result);
      } finally {
        await publisher.close();
        await admin.close().catch(() => {});
        await pool.end();
        await server.dispose();
      }
    },
    OUTAGE_TEST_TIMEOUT_MS,
  );
});
