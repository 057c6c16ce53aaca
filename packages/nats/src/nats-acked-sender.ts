/**
 * Pipelined JetStream publishing without the official client's per-request machinery: every message is a plain
 * `PUB subject reply` whose reply subject is a token under ONE wildcard inbox subscription, and the JetStream
 * PubAck replies are correlated by token. Timeouts are swept by a single timer (deadlines are monotonic in
 * insertion order); a disconnect fails every pending message at once, because replies to requests sent on a
 * dead connection never come. @internal
 */
import { BrokerError } from '@cqrs-ts/core';
import type { MsgHdrs, NatsConnection, Status, Subscription } from '@nats-io/transport-node';
import { nuid } from '@nats-io/transport-node';
import { classifyPubAck, classifyPublishError } from './nats-errors.ts';

/** Receives the outcome of one sent message: `undefined` when JetStream stored it (or had it already). */
export interface AckOwner {
  settle(index: number, error: BrokerError | undefined): void;
}

interface Entry {
  readonly owner: AckOwner;
  readonly index: number;
  readonly deadline: number;
  readonly subject: string;
}

/** @internal */
export interface AckedSender {
  readonly connected: boolean;
  readonly inFlight: number;
  /**
   * Sends one message expecting a PubAck; `owner.settle(index, ...)` is called exactly once, later. Returns an
   * error instead (and never settles) when the message could not be sent at all.
   */
  send(
    subject: string,
    data: Uint8Array,
    headers: MsgHdrs,
    owner: AckOwner,
    index: number,
  ): BrokerError | undefined;
  /** Called whenever capacity frees up (after each settle). */
  onSettled: (() => void) | undefined;
  /** Called when the connection is re-established after a loss. */
  onReconnected: (() => void) | undefined;
  /** Fails everything pending and stops listening. */
  close(): void;
}

/** @internal */
export function createAckedSender(
  nc: NatsConnection,
  options: { readonly timeoutMs: number; readonly inboxPrefix: string },
): AckedSender {
  const { timeoutMs } = options;
  const base = `${options.inboxPrefix}.${nuid.next()}.`;
  const baseLength = base.length;
  const pending = new Map<string, Entry>();
  let seq = 0;
  let connected = !nc.isClosed();
  let closed = false;
  let timer: ReturnType<typeof setTimeout> | undefined;

  const settle = (e: Entry, error: BrokerError | undefined) => {
    try {
      e.owner.settle(e.index, error);
    } finally {
      sender.onSettled?.();
    }
  };

  const sub: Subscription = nc.subscribe(`${base}*`, {
    callback: (err, msg) => {
      if (err !== null) return; // permissions: the pending messages time out
      const token = msg.subject.slice(baseLength);
      const e = pending.get(token);
      if (e === undefined) return; // late reply after a timeout or disconnect
      pending.delete(token);
      settle(e, classifyPubAck(msg.data, msg.headers, e.subject));
    },
  });

  const failAll = (make: () => BrokerError) => {
    if (pending.size === 0) return;
    const entries = [...pending.values()];
    pending.clear();
    const error = make();
    for (const e of entries) settle(e, error);
  };

  const sweep = () => {
    timer = undefined;
    const now = performance.now();
    const expired: Entry[] = [];
    for (const [token, e] of pending) {
      if (e.deadline > now) break;
      pending.delete(token);
      expired.push(e);
    }
    if (expired.length > 0) {
      const error = new BrokerError('timeout', `nats: no PubAck within ${timeoutMs} ms`);
      for (const e of expired) settle(e, error);
    }
    arm(now);
  };
  const arm = (now: number) => {
    if (timer !== undefined || pending.size === 0) return;
    const first = pending.values().next().value as Entry;
    timer = setTimeout(sweep, Math.max(1, Math.ceil(first.deadline - now)));
  };

  const reconnected = () => sender.onReconnected?.();
  const statuses = nc.status();
  void (async () => {
    try {
      for await (const s of statuses as AsyncIterable<Status>) {
        if (s.type === 'disconnect' || s.type === 'reconnecting' || s.type === 'staleConnection') {
          connected = false;
          failAll(() => new BrokerError('connection', 'nats: connection lost before the PubAck'));
        } else if (s.type === 'reconnect') {
          connected = true;
          if (!closed) reconnected();
        }
      }
    } catch {
      // the iterator only ends
    }
  })();
  void nc.closed().then(() => {
    connected = false;
    failAll(() => new BrokerError('closed', 'nats: connection closed before the PubAck'));
  });

  const sender: AckedSender = {
    get connected() {
      return connected && !closed;
    },
    get inFlight() {
      return pending.size;
    },
    onSettled: undefined,
    onReconnected: undefined,
    send(subject, data, headers, owner, index) {
      if (closed || nc.isClosed()) return new BrokerError('closed', 'nats: connection is closed');
      if (!connected) return new BrokerError('connection', 'nats: connection is down (reconnecting)');
      const token = (seq++).toString(36);
      try {
        nc.publish(subject, data, { reply: base + token, headers });
      } catch (error) {
        return classifyPublishError(error, subject);
      }
      const now = performance.now();
      pending.set(token, { owner, index, deadline: now + timeoutMs, subject });
      if (timer === undefined) arm(now);
      return undefined;
    },
    close() {
      if (closed) return;
      closed = true;
      clearTimeout(timer);
      timer = undefined;
      (statuses as { stop?: () => void }).stop?.();
      failAll(() => new BrokerError('closed', 'nats: publisher closed before the PubAck'));
      try {
        sub.unsubscribe();
      } catch {
        // connection already closed
      }
    },
  };
  return sender;
}
