import { createServer, type Server, type Socket, connect as tcpConnect } from 'node:net';

/** A TCP proxy on loopback in front of a service, to cut a client's connections on purpose. */
export interface TcpProxy {
  /** The port the proxy listens on (127.0.0.1). */
  readonly port: number;
  /** Connections opened through the proxy so far. */
  readonly connections: number;
  /** Destroys every open connection (both sides); new ones are accepted again at once. */
  cut(): void;
  /**
   * A connection that dies where the service cannot see it (a NAT or firewall timeout, a lost client host):
   * destroys the clients' side of every open connection and keeps the service's side open, discarding what the
   * service still sends into it. The service notices only through its own keepalive, or at {@link TcpProxy.close}.
   * New connections are accepted again at once.
   */
  halfOpen(): void;
  /**
   * An outage: destroys every open connection and stops listening, so connecting is refused (`ECONNREFUSED`) as
   * if the service were down, until {@link TcpProxy.unblock}.
   */
  block(): Promise<void>;
  /** Listens on the same port again. */
  unblock(): Promise<void>;
  /**
   * A hung service: connections stay open but nothing passes either way (new ones are accepted and hang too), so
   * a client sees no error, only silence, until {@link TcpProxy.resume} forwards what was held.
   */
  stall(): void;
  /** Forwards again after {@link TcpProxy.stall}. */
  resume(): void;
  /** Stops listening and destroys every connection. */
  close(): Promise<void>;
}

/**
 * Starts a TCP proxy on a free loopback port that forwards to `target`: point a client at it, then `cut()` to
 * make the client lose its connection without disturbing anyone else using the service.
 */
export async function createTcpProxy(target: {
  readonly host: string;
  readonly port: number;
}): Promise<TcpProxy> {
  const open = new Set<Socket>();
  const pairs = new Set<readonly [Socket, Socket]>();
  /** Service-side sockets of half-open connections, kept open until close(). */
  const orphans = new Set<Socket>();
  let connections = 0;
  let stalled = false;
  const server: Server = createServer((client) => {
    connections++;
    const upstream = tcpConnect(target.port, target.host);
    const pair = [client, upstream] as const;
    open.add(client);
    open.add(upstream);
    pairs.add(pair);
    const drop = () => {
      client.destroy();
      upstream.destroy();
      open.delete(client);
      open.delete(upstream);
      pairs.delete(pair);
    };
    client.on('error', drop).on('close', drop);
    upstream.on('error', drop).on('close', drop);
    if (stalled) {
      client.pause();
      upstream.pause();
    } else {
      client.pipe(upstream);
      upstream.pipe(client);
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('tcp proxy: no port');
  const port = address.port;
  let blocked = false;
  const destroyAll = () => {
    for (const socket of open) socket.destroy();
    open.clear();
  };
  return {
    port,
    get connections() {
      return connections;
    },
    cut: destroyAll,
    halfOpen() {
      for (const pair of pairs) {
        const [client, upstream] = pair;
        pairs.delete(pair);
        open.delete(client);
        open.delete(upstream);
        client.unpipe(upstream);
        upstream.unpipe(client);
        upstream.removeAllListeners('close').removeAllListeners('error');
        upstream.on('error', () => orphans.delete(upstream)).on('close', () => orphans.delete(upstream));
        upstream.resume(); // read and discard: the service's writes succeed, nobody receives them
        orphans.add(upstream);
        client.removeAllListeners('close').removeAllListeners('error');
        client.on('error', () => undefined).destroy();
      }
    },
    stall() {
      if (stalled) return;
      stalled = true;
      for (const [client, upstream] of pairs) {
        client.unpipe(upstream);
        upstream.unpipe(client);
        client.pause();
        upstream.pause();
      }
    },
    resume() {
      if (!stalled) return;
      stalled = false;
      for (const [client, upstream] of pairs) {
        client.pipe(upstream);
        upstream.pipe(client);
      }
    },
    async block() {
      if (blocked) return;
      blocked = true;
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      destroyAll();
      await closed;
    },
    async unblock() {
      if (!blocked) return;
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, '127.0.0.1', () => {
          server.off('error', reject);
          blocked = false;
          resolve();
        });
      });
    },
    async close() {
      destroyAll();
      for (const socket of orphans) socket.destroy();
      orphans.clear();
      if (blocked) return;
      blocked = true;
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
