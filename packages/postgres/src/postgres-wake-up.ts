import { ConfigurationError } from '@cqrs-ts/core';
import type { OutboxWakeUp } from '@cqrs-ts/core/spi';

/** A dedicated node-postgres `Client` (not a pooled one), connected or not: LISTEN holds its connection. */
export interface PgListenClient {
  connect?(): Promise<unknown>;
  query(text: string): Promise<unknown>;
  on(event: 'notification', listener: (message: { channel: string }) => void): unknown;
  on(event: 'error' | 'end', listener: (error?: Error) => void): unknown;
  end(): Promise<void>;
}

/** A postgres.js `sql` instance (its `listen` reconnects by itself). */
export interface PostgresJsListen {
  listen(
    channel: string,
    onNotify: (value: string) => void,
    onListen?: () => void,
  ): Promise<{ unlisten(): Promise<void> }>;
}

/** Options of {@link createPostgresWakeUp}: either `connect` (pg) or `sql` (postgres.js). */
export type PostgresWakeUpOptions = {
  /** @default 'cqrs_outbox' (the store's `notifyChannel`) */
  readonly channel?: string;
  /** Delay before a pg listener reconnects after its connection dropped. @default 1000 */
  readonly reconnectDelayMs?: number;
} & (
  | { readonly connect: () => Promise<PgListenClient>; readonly sql?: never }
  | { readonly sql: PostgresJsListen; readonly connect?: never }
);

/**
 * LISTEN/NOTIFY wake-up for the relay: appends send `pg_notify` on commit, so the relay publishes at once
 * instead of waiting for its next poll. Polling stays the safety net; a dropped listener reconnects.
 */
export function createPostgresWakeUp(options: PostgresWakeUpOptions): OutboxWakeUp {
  const channel = options.channel ?? 'cqrs_outbox';
  if (!/^[a-z_][a-z0-9_]{0,62}$/.test(channel)) {
    throw new ConfigurationError(`postgres wake-up: invalid channel ${JSON.stringify(channel)}`);
  }
  const delay = options.reconnectDelayMs ?? 1000;
  let stopped = false;
  let client: PgListenClient | undefined;
  let unlisten: (() => Promise<void>) | undefined;
  let timer: ReturnType<typeof setTimeout> | undefined;

  async function listenPg(connect: () => Promise<PgListenClient>, wake: () => void): Promise<void> {
    if (stopped) return;
    let c: PgListenClient | undefined;
    const retry = () => {
      if (c && client === c) client = undefined;
      c?.end().catch(() => {});
      if (!stopped) timer = setTimeout(() => void listenPg(connect, wake), delay);
      wake(); // notifications may have been missed while disconnected
    };
    try {
      c = await connect();
      let failed = false;
      c.on('error', () => {
        if (!failed) {
          failed = true;
          retry();
        }
      });
      c.on('end', () => {
        if (!failed) {
          failed = true;
          retry();
        }
      });
      c.on('notification', (m) => {
        if (m.channel === channel) wake();
      });
      try {
        await c.connect?.();
      } catch (error) {
        // `connect` may hand back a client it already connected; anything else is a real failure.
        if (!/already been connected/i.test((error as Error)?.message ?? '')) throw error;
      }
      await c.query(`LISTEN ${channel}`);
      client = c;
      if (stopped) await c.end();
    } catch {
      retry();
    }
  }

  return {
    async start(wake) {
      stopped = false;
      if ('sql' in options && options.sql) {
        const l = await options.sql.listen(channel, () => wake(), wake);
        unlisten = () => l.unlisten();
      } else if (options.connect) {
        await listenPg(options.connect, wake);
      }
    },
    async stop() {
      stopped = true;
      clearTimeout(timer);
      await unlisten?.().catch(() => {});
      const c = client;
      client = undefined;
      await c?.end().catch(() => {});
    },
  };
}
