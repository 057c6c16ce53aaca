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

/** The state of one start() … stop() of a wake-up. */
interface ListenSession {
  stopped: boolean;
  /** The pg client that listens, once its LISTEN is done. */
  client: PgListenClient | undefined;
  /** The last (re)connection attempt, awaited by stop(). */
  attempt: Promise<void> | undefined;
  timer: ReturnType<typeof setTimeout> | undefined;
}

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
  // One listening session per start(): a stopped session neither wakes nor reconnects, whatever its clients
  // report afterwards (ending a client emits 'end', which must not read as a dropped connection).
  let session: ListenSession | undefined;
  let unlisten: (() => Promise<void>) | undefined;

  function listenPg(
    s: ListenSession,
    connect: () => Promise<PgListenClient>,
    wake: () => void,
  ): Promise<void> {
    const attempt = (async () => {
      if (s.stopped) return;
      let c: PgListenClient | undefined;
      let failed = false;
      const retry = () => {
        if (failed) return;
        failed = true;
        if (c && s.client === c) s.client = undefined;
        c?.end().catch(() => {});
        if (s.stopped) return;
        s.timer = setTimeout(() => void listenPg(s, connect, wake), delay);
        wake(); // notifications may have been missed while disconnected
      };
      try {
        c = await connect();
        c.on('error', retry);
        c.on('end', retry);
        c.on('notification', (m) => {
          if (m.channel === channel && !s.stopped) wake();
        });
        try {
          await c.connect?.();
        } catch (error) {
          // `connect` may hand back a client it already connected; anything else is a real failure.
          if (!/already been connected/i.test((error as Error)?.message ?? '')) throw error;
        }
        await c.query(`LISTEN ${channel}`);
        if (s.stopped) {
          // stop() came while this connection was being made: it waits for this attempt, which closes it.
          failed = true;
          await c.end().catch(() => {});
        } else if (!failed) s.client = c;
      } catch {
        retry();
      }
    })();
    s.attempt = attempt;
    return attempt;
  }

  return {
    async start(wake) {
      if (session !== undefined && !session.stopped) return;
      const s: ListenSession = { stopped: false, client: undefined, attempt: undefined, timer: undefined };
      session = s;
      if ('sql' in options && options.sql) {
        const l = await options.sql.listen(
          channel,
          () => {
            if (!s.stopped) wake();
          },
          () => {
            if (!s.stopped) wake();
          },
        );
        unlisten = () => l.unlisten();
      } else if (options.connect) {
        await listenPg(s, options.connect, wake);
      }
    },
    async stop() {
      const s = session;
      if (s === undefined || s.stopped) return;
      s.stopped = true;
      clearTimeout(s.timer);
      const u = unlisten;
      unlisten = undefined;
      await u?.().catch(() => {});
      // A connection still being made (a reconnect) is closed by its own attempt once it is up.
      await s.attempt;
      const c = s.client;
      s.client = undefined;
      await c?.end().catch(() => {});
    },
  };
}
