/**
 * One trace id and one correlation id from an HTTP request to an event handler in another process, through each
 * real broker: the request (a client span's `traceparent`, an `x-correlation-id`) sends a command over a loopback
 * `@cqrs-ts/http` server, its handler emits an event into the outbox, the relay publishes it to the broker, and
 * a consumer in a child process (`fixtures/consumer-child.ts`, its own SDK and in-memory exporter) handles it.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { connect as tcpConnect } from 'node:net';
import { fileURLToPath } from 'node:url';
import {
  createInMemoryUnitOfWork,
  createMediator,
  createOutboxRelay,
  defineCommand,
  defineEvent,
  handle,
} from '@cqrs-ts/core';
import type { MessagePublisher } from '@cqrs-ts/core/spi';
import { commandRoute, createHttpHandler, nodeRouteInput, sendNodeReply } from '@cqrs-ts/http';
import { createKafkaPublisher, ensureKafkaTopics, parseKafkaBrokers } from '@cqrs-ts/kafka';
import { createNatsPublisher, ensureNatsStream } from '@cqrs-ts/nats';
import { instrumentCqrs } from '@cqrs-ts/otel';
import { createRabbitPublisher, ensureRabbitTopology } from '@cqrs-ts/rabbitmq';
import { createRedisStreamsPublisher } from '@cqrs-ts/redis';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect as natsConnect } from '@nats-io/transport-node';
import { SpanKind } from '@opentelemetry/api';
import { connect as amqpConnect } from 'amqplib';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { service, uniqueSuffix, waitFor } from '../../core/test/support/services.ts';
import { createTelemetry } from './support.ts';

const NATS_URL = process.env.CQRS_NATS_URL ?? '127.0.0.1:4222';
const RABBIT_URL = process.env.CQRS_RABBITMQ_URL ?? 'amqp://guest:guest@127.0.0.1:5672';
const REDIS_URL = process.env.CQRS_REDIS_URL ?? 'redis://127.0.0.1:6379';

/** A TCP probe: the service answers on its port (else skip, or fail with CQRS_REQUIRE_SERVICES=1). */
const reachable = (name: string, host: string, port: number) =>
  service(
    name,
    () =>
      new Promise<void>((resolve, reject) => {
        const s = tcpConnect({ host, port, timeout: 2000 }, () => {
          s.end();
          resolve();
        });
        s.on('error', reject);
        s.on('timeout', () => reject(new Error('timeout')));
      }),
  );
const natsUp = await reachable('nats', NATS_URL.split(':')[0]!, Number(NATS_URL.split(':')[1] ?? 4222));
const rabbitUp = await reachable(
  'rabbitmq',
  new URL(RABBIT_URL).hostname,
  Number(new URL(RABBIT_URL).port || 5672),
);
const KAFKA_BROKERS = parseKafkaBrokers(process.env.KAFKA_BROKERS);
if (KAFKA_BROKERS.length === 0)
  console.warn('SKIP one trace through Kafka: KAFKA_BROKERS is not set (no Kafka broker on this machine)');
const redisUp = await reachable(
  'redis',
  new URL(REDIS_URL).hostname,
  Number(new URL(REDIS_URL).port || 6379),
);

const PlaceOrder = defineCommand('shop.place-order')
  .withPayload<{ sku: string }>()
  .returns<{ orderId: string }>();
const OrderPlaced = defineEvent('shop.order-placed', { topic: 'placed' }).withPayload<{ orderId: string }>();

const CLIENT_TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
const CLIENT_SPAN = '00f067aa0ba902b7';
const fixture = fileURLToPath(new URL('./fixtures/consumer-child.ts', import.meta.url));

interface ChildSpan {
  readonly name: string;
  readonly kind: SpanKind;
  readonly traceId: string;
  readonly spanId: string;
  readonly parentSpanId: string | undefined;
  readonly attributes: Record<string, unknown>;
}
interface ChildReport {
  readonly disposition: string;
  readonly handled: { type: string; traceId: string; spanId: string; correlationId: string } | undefined;
  readonly spans: readonly ChildSpan[];
}

/** Starts the consumer child; resolves once it consumes, with its report once a delivery was settled. */
async function startChild(env: Record<string, string>) {
  const child: ChildProcess = spawn(process.execPath, ['--conditions=@cqrs-ts/source', fixture], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: string[] = [];
  let stderr = '';
  let buffer = '';
  child.stdout!.on('data', (d: Buffer) => {
    buffer += d.toString();
    for (let i = buffer.indexOf('\n'); i >= 0; i = buffer.indexOf('\n')) {
      lines.push(buffer.slice(0, i));
      buffer = buffer.slice(i + 1);
    }
  });
  child.stderr!.on('data', (d: Buffer) => {
    stderr = (stderr + d.toString()).slice(-4000);
  });
  const seen = (what: (line: string) => boolean, label: string) =>
    waitFor(
      () => {
        if (child.exitCode !== null) throw new Error(`consumer child exited (${child.exitCode}): ${stderr}`);
        return lines.some(what);
      },
      30_000,
      label,
    );
  await seen((l) => l === 'ready', 'the child consuming');
  return {
    async report(): Promise<ChildReport> {
      await seen((l) => l.startsWith('{'), 'the child settling the delivery');
      return JSON.parse(lines.find((l) => l.startsWith('{'))!) as ChildReport;
    },
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      }),
  };
}

/** The producing side: a loopback HTTP server sending the command, and an outbox relay on `publisher`. */
async function sendOverHttpAndRelay(publisher: MessagePublisher, correlationId: string) {
  const uow = createInMemoryUnitOfWork();
  const mediator = createMediator({
    behaviors: [uow],
    handlers: [
      handle(PlaceOrder, (c, ctx) => {
        ctx.emit(OrderPlaced, { orderId: `o-${c.payload.sku}` });
        return { orderId: `o-${c.payload.sku}` };
      }),
    ],
  });
  const http = createHttpHandler({
    mediator,
    routes: [commandRoute(PlaceOrder, { path: '/orders', status: 201 })],
  });
  const server: Server = createServer((req, res) => {
    void http.handle(nodeRouteInput(req, res, undefined)).then((reply) => sendNodeReply(res, reply));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  try {
    const response = await fetch(`http://127.0.0.1:${(server.address() as AddressInfo).port}/orders`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        traceparent: `00-${CLIENT_TRACE}-${CLIENT_SPAN}-01`,
        'x-correlation-id': correlationId,
      },
      body: '{"sku":"book"}',
    });
    expect(response.status).toBe(201);
  } finally {
    server.closeAllConnections();
    server.close();
  }
  const run = await createOutboxRelay({ store: uow.outbox, publisher }).runOnce();
  expect(run.published).toBe(1);
}

/** Sends, relays and consumes; checks one trace and one correlation id from the request to the handler. */
async function provesOneTrace(
  system: string,
  publisher: MessagePublisher,
  childEnv: Record<string, string>,
): Promise<void> {
  const t = createTelemetry();
  const otel = instrumentCqrs({ tracerProvider: t.tracerProvider, messagingSystem: system });
  const child = await startChild({ CHILD_BROKER: system, ...childEnv });
  const correlationId = `corr-${system}-${uniqueSuffix}`;
  try {
    await sendOverHttpAndRelay(publisher, correlationId);
    const report = await child.report();
    const command = t.span('cqrs.command shop.place-order');
    const append = t.span('cqrs.outbox append');
    const send = t.spans().find((s) => s.name.startsWith('send '))!;
    const processSpan = report.spans.find((s) => s.kind === SpanKind.CONSUMER)!;
    expect(report.disposition).toBe('ack');
    // one trace: the client's, through the command, the outbox, the relay, the broker and the other process
    for (const traceId of [
      command.spanContext().traceId,
      append.spanContext().traceId,
      send.spanContext().traceId,
      processSpan.traceId,
      report.handled!.traceId,
    ])
      expect(traceId).toBe(CLIENT_TRACE);
    expect(command.parentSpanContext?.spanId).toBe(CLIENT_SPAN);
    expect(append.parentSpanContext?.spanId).toBe(command.spanContext().spanId);
    expect(send.parentSpanContext?.spanId).toBe(command.spanContext().spanId); // the event carries the command's span
    expect(send.links.map((l) => l.context.spanId)).toEqual([command.spanContext().spanId]);
    // the event goes out with its creation context (the command's span): the consumer continues it
    expect(processSpan.parentSpanId).toBe(command.spanContext().spanId);
    expect(processSpan.name).toMatch(/^process /);
    expect(report.handled!.spanId).toBe(processSpan.spanId); // the handler ran inside the consumer span
    // one correlation id, from the request header to the handler's context and both sides' spans
    expect(report.handled!.correlationId).toBe(correlationId);
    expect(command.attributes['messaging.message.conversation_id']).toBe(correlationId);
    expect(send.attributes['messaging.message.conversation_id']).toBe(correlationId);
    expect(processSpan.attributes['messaging.message.conversation_id']).toBe(correlationId);
    expect(processSpan.attributes).toMatchObject({
      'messaging.system': system,
      'cqrs.message.type': 'shop.order-placed',
      'cqrs.disposition': 'ack:handled',
    });
    expect(send.attributes['messaging.system']).toBe(system);
  } finally {
    otel.dispose();
    await child.stop();
    await t.close();
  }
}

describe('one trace from an HTTP request to an event handler in another process', () => {
  const cleanups: (() => Promise<unknown>)[] = [];
  afterAll(async () => {
    for (const c of cleanups) await c().catch(() => undefined);
  });

  it.skipIf(!natsUp)('through NATS JetStream', async () => {
    const nc = await natsConnect({ servers: NATS_URL });
    const stream = `OTEL_${uniqueSuffix}`;
    const prefix = stream.toLowerCase();
    const jsm = await jetstreamManager(nc);
    cleanups.push(async () => {
      await jsm.streams.delete(stream).catch(() => undefined);
      await jsm.streams.delete(`${stream}_DLQ`).catch(() => undefined);
      await nc.close();
    });
    await ensureNatsStream({ connection: nc, name: stream, subjects: [`${prefix}.>`], storage: 'memory' });
    const publisher = await createNatsPublisher({ connection: nc, subjectPrefix: prefix });
    cleanups.push(() => publisher.close());
    await provesOneTrace('nats', publisher, {
      CHILD_URL: NATS_URL,
      CHILD_STREAM: stream,
      CHILD_NAME: 'otel-child',
    });
  });

  it.skipIf(!rabbitUp)('through RabbitMQ', async () => {
    const exchange = `otel.ex.${uniqueSuffix}`;
    const queue = `otel.q.${uniqueSuffix}`;
    await ensureRabbitTopology({ url: RABBIT_URL, exchange, queue, bindings: ['placed'] });
    cleanups.push(async () => {
      const c = await amqpConnect(RABBIT_URL);
      const ch = await c.createChannel();
      await ch.deleteQueue(queue).catch(() => undefined);
      for (const q of [`${queue}.dead`]) await ch.deleteQueue(q).catch(() => undefined);
      await ch.deleteExchange(exchange).catch(() => undefined);
      await c.close();
    });
    const publisher = createRabbitPublisher({ url: RABBIT_URL, exchange });
    cleanups.push(() => publisher.close());
    await provesOneTrace('rabbitmq', publisher, {
      CHILD_URL: RABBIT_URL,
      CHILD_EXCHANGE: exchange,
      CHILD_QUEUE: queue,
      CHILD_TOPIC: 'placed',
      CHILD_NAME: 'otel-child',
    });
  });

  it.skipIf(!redisUp)('through Redis Streams', async () => {
    const prefix = `cqrs-test:otel:${uniqueSuffix}:`;
    const publisher = createRedisStreamsPublisher({ url: REDIS_URL, streamPrefix: prefix });
    cleanups.push(async () => {
      await publisher.close();
      const r = new Redis(REDIS_URL);
      const keys = await r.keys(`${prefix}*`);
      if (keys.length > 0) await r.del(...keys);
      r.disconnect();
    });
    await provesOneTrace('redis', publisher, {
      CHILD_URL: REDIS_URL,
      CHILD_STREAM: `${prefix}placed`,
      CHILD_NAME: 'otel-child',
    });
  });

  it.skipIf(KAFKA_BROKERS.length === 0)('through Kafka (KAFKA_BROKERS)', async () => {
    const topic = `otel-placed-${uniqueSuffix}`;
    await ensureKafkaTopics({ brokers: KAFKA_BROKERS, topics: [topic], deadLetterTopic: (t) => `${t}.DLT` });
    const publisher = createKafkaPublisher({
      brokers: KAFKA_BROKERS,
      clientId: 'otel-pub',
      topic: () => topic,
    });
    cleanups.push(() => publisher.close());
    await provesOneTrace('kafka', publisher, {
      CHILD_URL: KAFKA_BROKERS.join(','),
      CHILD_TOPIC: topic,
      CHILD_NAME: `otel-child-${uniqueSuffix}`,
    });
  });
});
