/** Shared helpers of the RabbitMQ tests. */
import { createTcpProxy, type TcpProxy } from '@cqrs-ts/testing/contracts';
import { type ChannelModel, type ConfirmChannel, connect, type GetMessage } from 'amqplib';
import { service, uniqueSuffix } from '../../core/test/support/services.ts';

export const RABBIT_URL = process.env.CQRS_RABBITMQ_URL ?? 'amqp://guest:guest@127.0.0.1:5672';

/** Skips (or fails with CQRS_REQUIRE_SERVICES=1) when RabbitMQ is unreachable. */
export const rabbitAvailable = (): Promise<boolean> =>
  service('rabbitmq', async () => {
    const c = await connect(RABBIT_URL, { timeout: 2000 });
    await c.close();
  });

/** A TCP proxy in front of the local broker (to cut, block or stall it) and the AMQP URL through it. */
export async function rabbitProxy(): Promise<{ proxy: TcpProxy; url: string }> {
  const target = new URL(RABBIT_URL);
  const proxy = await createTcpProxy({ host: target.hostname, port: Number(target.port || 5672) });
  const url = new URL(RABBIT_URL);
  url.host = `127.0.0.1:${proxy.port}`;
  return { proxy, url: url.href };
}

let n = 0;
/** A name unique to this process and call. */
export const uniqueName = (prefix: string): string => `${prefix}.${uniqueSuffix}.${++n}`;

/** A raw amqplib connection and confirm channel for inspecting and injecting messages. */
export async function rawChannel(): Promise<{
  conn: ChannelModel;
  ch: ConfirmChannel;
  close(): Promise<void>;
}> {
  const conn = await connect(RABBIT_URL);
  conn.on('error', () => {});
  const ch = await conn.createConfirmChannel();
  ch.on('error', () => {});
  return {
    conn,
    ch,
    async close() {
      await conn.close().catch(() => {});
    },
  };
}

/** Gets up to `max` messages from `queue` (acked), polling until `count` arrived or `timeoutMs` passed. */
export async function drainQueue(
  ch: ConfirmChannel,
  queue: string,
  count: number,
  timeoutMs = 10_000,
): Promise<GetMessage[]> {
  const out: GetMessage[] = [];
  const until = Date.now() + timeoutMs;
  while (out.length < count && Date.now() < until) {
    const m = await ch.get(queue, { noAck: true });
    if (m === false) await new Promise((r) => setTimeout(r, 20));
    else out.push(m);
  }
  return out;
}

/** Deletes queues and exchanges, ignoring the missing ones. */
export async function cleanup(names: { queues?: string[]; exchanges?: string[] }): Promise<void> {
  const conn = await connect(RABBIT_URL).catch(() => undefined);
  if (conn === undefined) return;
  conn.on('error', () => {});
  for (const q of names.queues ?? []) {
    const ch = await conn.createChannel();
    ch.on('error', () => {});
    await ch.deleteQueue(q).catch(() => {});
    await ch.close().catch(() => {});
  }
  for (const e of names.exchanges ?? []) {
    const ch = await conn.createChannel();
    ch.on('error', () => {});
    await ch.deleteExchange(e).catch(() => {});
    await ch.close().catch(() => {});
  }
  await conn.close().catch(() => {});
}

/** Every queue a consumer topology declares for `queue` with `delays`. */
export const topologyQueues = (queue: string, delays: readonly number[]): string[] => [
  queue,
  `${queue}.dead`,
  ...delays.map((d) => `${queue}.retry.${d}`),
];
