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
   * An outage: destroys every open connection and stops listening, so connecting is refused (`ECONNREFUSED`) as
   * if the service were down, until {@link TcpProxy.unblock}.
   */
  block(): Promise<void>;
  /** Listens on the same port again. */
  unblock(): Promise<void>;
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
  let connections = 0;
  const server: Server = createServer((client) => {
    connections++;
    const upstream = tcpConnect(target.port, target.host);
    open.add(client);
    open.add(upstream);
    const drop = () => {
      client.destroy();
      upstream.destroy();
      open.delete(client);
      open.delete(upstream);
    };
    client.on('error', drop).on('close', drop);
    upstream.on('error', drop).on('close', drop);
    client.pipe(upstream);
    upstream.pipe(client);
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
      if (blocked) return;
      blocked = true;
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
