import net from 'node:net';
import { ConfigurationError, consumerHealth, createHealth, defineEvent } from '@cqrs-ts/core';
import { createNatsConsumer, createNatsPublisher, ensureNatsStream, type NatsPublisher } from '@cqrs-ts/nats';
import { type BrokerHarness, createTcpProxy, describeBrokerContract } from '@cqrs-ts/testing/contracts';
import { type JetStreamManager, jetstreamManager } from '@nats-io/jetstream';
import { type NatsConnection, headers as natsHeaders } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectTest, deleteStreams, NATS_URL, natsAvailable, readStream, unique, until } from './support.ts';

/** The broker contract over a fresh stream per test; consumers connect through a TCP proxy the test can cut. */
describeBrokerContract('nats', async (): Promise<BrokerHarness | undefined> => {
  if (!natsAvailable) return undefined;
  const nc = await connectTest();
  const jsm = await jetstreamManager(nc);
  const [host, port] = NATS_URL.split(':') as [string, string];
  const proxy = await createTcpProxy({ host, port: Number(port) });
  const streams: string[] = [];
  let stream = '';
  let prefix = '';
  let publisher: NatsPublisher | undefined;
  return {
    topic: 'ticks',
    publisher: () => publisher!,
    consumer(options) {
      return createNatsConsumer({
        ...options,
        servers: `127.0.0.1:${proxy.port}`,
        connectionOptions: { reconnectTimeWait: 100 },
        stream,
        name: 'contract',
        pullExpiresMs: 1000,
        // A message the server delivers into a cut connection before it sees the cut comes back after the ack
        // wait (see the half-open test below): short here, so the reconnection test does not wait 30 s for it.
        ackWaitMs: 3000,
      });
    },
    async publishRaw(data, attributes = {}) {
      const h = natsHeaders();
      for (const [k, v] of Object.entries(attributes))
        h.set(k === 'datacontenttype' ? 'content-type' : `ce-${k}`, v);
      await jsm.jetstream().publish(`${prefix}.ticks`, data, { headers: h });
    },
    async deadLetters() {
      const dead = await readStream(nc, `${stream}_DLQ`).catch(() => []);
      return dead.map((m) => ({
        id: m.headers?.get('ce-id') || undefined,
        reason: m.headers?.get('ce-deadletterreason') ?? '',
        data: m.data,
      }));
    },
    async backlog() {
      const info = await jsm.consumers.info(stream, 'contract');
      return info.num_ack_pending + info.num_pending;
    },
    interrupt: async () => proxy.cut(),
    async reset() {
      await publisher?.close();
      stream = unique('CON');
      prefix = stream.toLowerCase();
      streams.push(stream, `${stream}_DLQ`);
      await ensureNatsStream({ connection: nc, name: stream, subjects: [`${prefix}.>`] });
      publisher = await createNatsPublisher({ connection: nc, subjectPrefix: prefix });
    },
    async close() {
      await publisher?.close();
      await deleteStreams(jsm, ...streams);
      await proxy.close();
      await nc.close();
    },
  };
});

describe.skipIf(!natsAvailable)('nats consumer', () => {
  let nc: NatsConnection;
  let jsm: JetStreamManager;
  const streams: string[] = [];
  const closers: Array<{ stop: () => Promise<void> }> = [];

  beforeAll(async () => {
    nc = await connectTest();
    jsm = await jetstreamManager(nc);
  });
  afterAll(async () => {
    for (const c of closers) await c.stop();
    await deleteStreams(jsm, ...streams);
    await nc.close();
  });

  async function setup() {
    const stream = unique('CON');
    const prefix = stream.toLowerCase();
    streams.push(stream, `${stream}_DLQ`);
    await ensureNatsStream({ connection: nc, name: stream, subjects: [`${prefix}.>`] });
    return { stream, prefix };
  }
  const consumer = (options: Parameters<typeof createNatsConsumer>[0]) => {
    const c = createNatsConsumer({ connection: nc, ...options });
    closers.push(c);
    return c;
  };

  it('a hung server (a stalled TCP proxy) turns readiness red within two idle heartbeats past the one due', async () => {
    const { stream } = await setup();
    const [host, port] = NATS_URL.split(':') as [string, string];
    const proxy = await createTcpProxy({ host, port: Number(port) });
    const HEARTBEAT = 500; // the pull's idle heartbeat: half of pullExpiresMs
    const c = createNatsConsumer({
      servers: `127.0.0.1:${proxy.port}`,
      stream,
      name: 'hung',
      pullExpiresMs: 2 * HEARTBEAT,
      handle: () => {},
    });
    const health = createHealth({ components: [consumerHealth('consumer:hung', c)] });
    const ready = async () => (await health.ready()).checks['consumer:hung']![0]!;
    try {
      await c.start();
      // a server heartbeat arrived: the beat after the first pull
      await until(() => (c.health().heartbeat?.cycles ?? 0) >= 3, 10_000, 'server heartbeats');
      expect(c.health().heartbeat?.intervalMs).toBe(HEARTBEAT);
      expect((await ready()).status).toBe('pass');
      proxy.stall(); // the connection stays open, nothing comes back
      const stalledAt = Date.now();
      let output: string | undefined;
      await until(
        async () => {
          const r = await ready();
          output = r.output;
          return r.status === 'fail';
        },
        10_000,
        'readiness red',
      );
      // the next heartbeat was due at most one interval after the stall; red two intervals after that
      expect(Date.now() - stalledAt).toBeLessThanOrEqual(3 * HEARTBEAT + 300);
      expect(output).toContain('no heartbeat');
    } finally {
      proxy.resume();
      health.close();
      await c.stop();
      await proxy.close();
    }
  });

  it('acks of one event-loop turn leave in one socket write; a stop right after the last handler leaves nothing unacked', async () => {
    const { stream, prefix } = await setup();
    const Ticked = defineEvent('nats.acks-ticked', { topic: 'ticks' }).withPayload<{ n: number }>();
    const N = 400;
    const publisher = await createNatsPublisher({ connection: nc, subjectPrefix: prefix });
    const sent = await publisher.publishEvents(Array.from({ length: N }, (_, n) => Ticked.create({ n })));
    expect(sent.every((r) => r.ok)).toBe(true);
    await publisher.close();
    // the consumer has a connection of its own, through a proxy: every write to the proxy's port is the consumer's
    const [host, port] = NATS_URL.split(':') as [string, string];
    const proxy = await createTcpProxy({ host, port: Number(port) });
    const write = net.Socket.prototype.write;
    let writes = 0;
    net.Socket.prototype.write = function (this: net.Socket, ...args: unknown[]) {
      if (this.remotePort === proxy.port) writes++;
      return (write as (...a: unknown[]) => boolean).apply(this, args);
    } as typeof write;
    let handled = 0;
    let stopping: Promise<void> | undefined;
    const c = createNatsConsumer({
      servers: `127.0.0.1:${proxy.port}`,
      stream,
      name: 'batched-acks',
      concurrency: 64,
      handle: () => {
        // the last handler stops the consumer at once: its ack and those of its turn are still waiting then
        if (++handled === N) stopping = c.stop();
      },
    });
    try {
      await c.start();
      await until(() => stopping !== undefined, 20_000, 'every message handled');
      await stopping;
      expect(c.health().handled).toBe(N);
      // one write per ack would be N writes; pulls and connection chatter are a handful
      expect(writes).toBeGreaterThan(0);
      expect(writes).toBeLessThan(N / 4);
      const info = await jsm.consumers.info(stream, 'batched-acks');
      expect(info.num_ack_pending + info.num_pending).toBe(0);
    } finally {
      net.Socket.prototype.write = write;
      await c.stop();
      await proxy.close();
    }
  });

  it('a message delivered into a connection that died unseen (half open) comes back after the ack wait', async () => {
    const { stream, prefix } = await setup();
    const Ticked = defineEvent('nats.half-open', { topic: 'ticks' }).withPayload<{ n: number }>();
    const publisher = await createNatsPublisher({ connection: nc, subjectPrefix: prefix });
    const [host, port] = NATS_URL.split(':') as [string, string];
    const proxy = await createTcpProxy({ host, port: Number(port) });
    const ACK_WAIT = 2000;
    const seen: number[] = [];
    const c = createNatsConsumer({
      servers: `127.0.0.1:${proxy.port}`,
      connectionOptions: { reconnectTimeWait: 100 },
      stream,
      name: 'half-open',
      ackWaitMs: ACK_WAIT,
      pullExpiresMs: 1000,
      handle: (event) => {
        seen.push((event.payload as { n: number }).n);
      },
    });
    try {
      await c.start();
      expect((await publisher.publishEvents([Ticked.create({ n: 1 })]))[0]!.ok).toBe(true);
      await until(() => seen.includes(1), 10_000, 'the message before the cut');
      // its ack leaves at the end of the turn: cut after the server has it, or 1 would come back too
      await until(
        async () => (await jsm.consumers.info(stream, 'half-open')).num_ack_pending === 0,
        10_000,
        'the ack of the message before the cut',
      );
      // the server still holds the old connection and its waiting pull: the next message goes into it and is lost
      proxy.halfOpen();
      const cutAt = Date.now();
      expect((await publisher.publishEvents([Ticked.create({ n: 2 })]))[0]!.ok).toBe(true);
      await until(() => seen.includes(2), 15_000, 'the message delivered into the dead connection');
      // not before the ack wait: it was delivered once, to the connection nobody reads any more
      expect(Date.now() - cutAt).toBeGreaterThanOrEqual(ACK_WAIT - 100);
      expect(c.health().reconnects).toBeGreaterThanOrEqual(1);
      await until(
        async () => {
          const info = await jsm.consumers.info(stream, 'half-open');
          return info.num_ack_pending + info.num_pending === 0;
        },
        10_000,
        'nothing left unacked',
      );
      expect(seen).toEqual([1, 2]);
    } finally {
      await c.stop();
      await publisher.close();
      await proxy.close();
    }
  });

  it('rejects bad configuration with ConfigurationError', async () => {
    const handle = () => {};
    expect(() => createNatsConsumer({ stream: 'a.b', name: 'x', handle })).toThrow(ConfigurationError);
    expect(() => createNatsConsumer({ stream: 'S', name: 'x y', handle })).toThrow(ConfigurationError);
    expect(() => createNatsConsumer({ stream: 'S', name: 'x' })).toThrow(ConfigurationError);
    expect(() => createNatsConsumer({ stream: 'S', name: 'x', handle, maxAttempts: 0 })).toThrow(
      ConfigurationError,
    );
    expect(() => createNatsConsumer({ stream: 'S', name: 'x', handle, concurrency: 0 })).toThrow(
      ConfigurationError,
    );
    expect(() => createNatsConsumer({ stream: 'S', name: 'x', handle, ackWaitMs: 10 })).toThrow(
      ConfigurationError,
    );
    expect(() => createNatsConsumer({ stream: 'S', name: 'x', handle, filterSubjects: 'a b' })).toThrow(
      ConfigurationError,
    );
    expect(() =>
      createNatsConsumer({ stream: 'S', name: 'x', handle, deadLetter: { subject: 'dlq.>' } }),
    ).toThrow(ConfigurationError);
    // a durable that exists with another filter is refused, not silently changed
    const { stream, prefix } = await setup();
    const a = consumer({ stream, name: 'filtered', handle, filterSubjects: `${prefix}.a` });
    await a.start();
    await a.stop();
    const b = consumer({ stream, name: 'filtered', handle, filterSubjects: `${prefix}.b` });
    await expect(b.start()).rejects.toBeInstanceOf(ConfigurationError);
    await b.stop();
  });
});
