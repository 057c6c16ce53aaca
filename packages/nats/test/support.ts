/**
 * Shared helpers of the NATS tests: server availability, unique streams (deleted after the test), reading a
 * stream back with a throwaway ordered consumer.
 */
import { execFileSync } from 'node:child_process';
import { type JetStreamManager, type JsMsg, jetstreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import {
  type PrivateServer,
  service,
  startPrivateServer,
  uniqueSuffix,
} from '../../core/test/support/services.ts';

export const NATS_URL = process.env.CQRS_NATS_URL ?? '127.0.0.1:4222';

/** True when a JetStream-enabled server answers (else the suite skips, or fails with CQRS_REQUIRE_SERVICES=1). */
export const natsAvailable = await service('nats', async () => {
  const nc = await connect({ servers: NATS_URL, timeout: 2000, reconnect: false });
  try {
    await (await jetstreamManager(nc)).getAccountInfo();
  } finally {
    await nc.close();
  }
});

let counter = 0;
/** A name unique to this run: `<prefix>_<pid>_<random>_<n>`. */
export const unique = (prefix: string) => `${prefix}_${uniqueSuffix}_${counter++}`;

/** A test connection that reconnects forever. */
export const connectTest = (): Promise<NatsConnection> =>
  connect({ servers: NATS_URL, maxReconnectAttempts: -1, reconnectTimeWait: 250 });

/** Reads every message of `stream` (optionally one subject filter), in stream order. */
export async function readStream(nc: NatsConnection, stream: string, filter?: string): Promise<JsMsg[]> {
  const js = (await jetstreamManager(nc)).jetstream();
  const info = await (await jetstreamManager(nc)).streams.info(stream);
  const total = info.state.messages;
  if (total === 0) return [];
  const c = await js.consumers.get(stream, filter === undefined ? {} : { filter_subjects: [filter] });
  const out: JsMsg[] = [];
  const iter = await c.fetch({ max_messages: total, expires: 2000 });
  for await (const m of iter) out.push(m);
  return out;
}

/** Deletes streams, ignoring missing ones. */
export async function deleteStreams(jsm: JetStreamManager, ...names: string[]): Promise<void> {
  for (const n of names) await jsm.streams.delete(n).catch(() => undefined);
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Polls every 20 ms until `condition` holds; throws after `timeoutMs`. */
export async function until(condition: () => boolean | Promise<boolean>, timeoutMs: number, what: string) {
  const end = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(20);
  }
}

/** The pid of the local nats-server, if one runs. */
export function natsPid(): number | undefined {
  try {
    const out = execFileSync('pgrep', ['-x', 'nats-server'], { encoding: 'utf8' }).trim();
    const pid = Number(out.split('\n')[0]);
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

/** Kills the local nats-server (SIGKILL) and waits until it is gone. */
export async function killNats(): Promise<void> {
  const pid = natsPid();
  if (pid === undefined) throw new Error('no nats-server process to kill');
  process.kill(pid, 'SIGKILL');
  await until(() => natsPid() === undefined, 10_000, 'nats-server to exit');
}

/** True when a JetStream request succeeds on a fresh connection. */
export async function natsReady(): Promise<boolean> {
  try {
    const nc = await connect({ servers: NATS_URL, timeout: 1000, reconnect: false });
    try {
      await (await jetstreamManager(nc, { timeout: 1000 })).getAccountInfo();
      return true;
    } finally {
      await nc.close();
    }
  } catch {
    return false;
  }
}

/** Starts nats-server with the command of scripts/services.sh (when it is not running) and waits for JetStream. */
export async function startNats(): Promise<void> {
  if (natsPid() === undefined) {
    execFileSync('start-stop-daemon', [
      '--start',
      '--oknodo',
      '--background',
      '--exec',
      '/usr/sbin/nats-server',
      '--',
      '-a',
      '127.0.0.1',
      '-p',
      '4222',
      '-js',
      '-sd',
      '/var/lib/nats-server',
      '-l',
      '/var/log/nats-server.log',
    ]);
  }
  await until(natsReady, 60_000, 'nats-server with JetStream');
}

/** A nats-server of the test's own (never the shared one) with JetStream; SIGKILL keeps what it acknowledged. */
export async function startPrivateNats(): Promise<PrivateServer & { readonly url: string }> {
  const server = await startPrivateServer(
    'nats-server',
    (port, dir) => ['-a', '127.0.0.1', '-p', String(port), '-js', '-sd', dir],
    async (port) => {
      try {
        const nc = await connect({ servers: `127.0.0.1:${port}`, timeout: 1000, reconnect: false });
        await nc.close();
        return true;
      } catch {
        return false;
      }
    },
  );
  return Object.assign(server, { url: `127.0.0.1:${server.port}` });
}
