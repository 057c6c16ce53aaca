/**
 * Pipelined JetStream publishing without the official client's per-request machinery: every message is a plain
 * `PUB subject reply` whose reply subject is a token under ONE wildcard inbox subscription, and the JetStream
 * PubAck replies are correlated by token. Timeouts are swept by a single timer (deadlines are monotonic in
 * insertion order); a disconnect fails every pending message at once, because replies to requests sent on a
 * dead connection never come. @internal
 */
import type { MsgHdrs, NatsConnection, Status, Subscription } from '@nats-io/transport-node';
import { errors as natsErrors, nuid } from '@nats-io/transport-node';
import { NatsBrokerError } from './nats-errors.ts';

/** Receives the outcome of one sent message: `undefined` when JetStream stored it (or had it already). */
export interface AckOwner {
  settle(index: number, error: NatsBrokerError | undefined): void;
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
  ): NatsBrokerError | undefined;
  /** Called whenever capacity frees up (after each settle). */
  onSettled: (() => void) | undefined;
  /** Fails everything pending and stops listening. */
  close(): void;
}

const STREAM_ACK_PREFIX = new TextEncoder().encode('{"stream":');
const utf8 = new TextDecoder();

function isStreamAck(data: Uint8Array): boolean {
  if (data.length <= STREAM_ACK_PREFIX.length) return false;
  for (let i = 0; i < STREAM_ACK_PREFIX.length; i++) if (data[i] !== STREAM_ACK_PREFIX[i]) return false;
  return true;
}

/** Maps a PubAck reply to `undefined` (stored) or the failure. */
function parseAck(
  data: Uint8Array,
  headers: MsgHdrs | undefined,
  subject: string,
): NatsBrokerError | undefined {
  const code = headers?.code ?? 0;
  if (code === 503) {
    return new NatsBrokerError(
      'no-stream',
      `no JetStream stream captures subject ${subject} (no responders)`,
    );
  }
  if (isStreamAck(data)) return undefined;
  if (code >= 300) {
    return new NatsBrokerError(
      'rejected',
      `publish to ${subject} failed: ${code} ${headers?.description ?? ''}`,
    );
  }
  let reply: { stream?: unknown; error?: { code?: number; err_code?: number; description?: string } };
  try {
    reply = JSON.parse(utf8.decode(data)) as typeof reply;
  } catch (cause) {
    return new NatsBrokerError('rejected', `publish to ${subject}: unreadable PubAck`, { cause });
  }
  const error = reply?.error;
  if (error !== undefined && error !== null) {
    const description = String(error.description ?? 'unknown error').slice(0, 500);
    const apiCode = typeof error.err_code === 'number' ? error.err_code : undefined;
    // 10054: message size exceeds the stream's max_msg_size; the same message can never be stored.
    if (apiCode === 10054 || /message size exceeds/i.test(description)) {
      return new NatsBrokerError('too-large', `publish to ${subject} rejected: ${description}`, {
        ...(apiCode !== undefined ? { apiCode } : {}),
      });
    }
    return new NatsBrokerError('rejected', `publish to ${subject} rejected: ${description}`, {
      ...(apiCode !== undefined ? { apiCode } : {}),
    });
  }
  if (typeof reply?.stream === 'string' && reply.stream.length > 0) return undefined;
  return new NatsBrokerError('rejected', `publish to ${subject}: invalid PubAck`);
}

function publishError(error: unknown, subject: string): NatsBrokerError {
  if (
    error instanceof natsErrors.ClosedConnectionError ||
    error instanceof natsErrors.DrainingConnectionError
  ) {
    return new NatsBrokerError('closed', 'NATS connection is closed', { cause: error });
  }
  if (error instanceof natsErrors.InvalidSubjectError) {
    return new NatsBrokerError('invalid', `invalid subject ${JSON.stringify(subject.slice(0, 200))}`, {
      cause: error,
    });
  }
  const text = error instanceof Error ? error.message : String(error);
  if (/max_payload/i.test(text)) {
    return new NatsBrokerError('too-large', `message to ${subject} exceeds the server's max_payload`, {
      cause: error,
    });
  }
  if (error instanceof natsErrors.InvalidArgumentError) {
    return new NatsBrokerError('invalid', `publish to ${subject}: ${text}`, { cause: error });
  }
  return new NatsBrokerError('rejected', `publish to ${subject}: ${text}`, { cause: error });
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

  const settle = (e: Entry, error: NatsBrokerError | undefined) => {
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
      settle(e, parseAck(msg.data, msg.headers, e.subject));
    },
  });

  const failAll = (make: () => NatsBrokerError) => {
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
      const error = new NatsBrokerError('timeout', `no PubAck within ${timeoutMs} ms`);
      for (const e of expired) settle(e, error);
    }
    arm(now);
  };
  const arm = (now: number) => {
    if (timer !== undefined || pending.size === 0) return;
    const first = pending.values().next().value as Entry;
    timer = setTimeout(sweep, Math.max(1, Math.ceil(first.deadline - now)));
  };

  const statuses = nc.status();
  void (async () => {
    try {
      for await (const s of statuses as AsyncIterable<Status>) {
        if (s.type === 'disconnect' || s.type === 'reconnecting' || s.type === 'staleConnection') {
          connected = false;
          failAll(() => new NatsBrokerError('disconnected', 'NATS connection lost before the PubAck'));
        } else if (s.type === 'reconnect') {
          connected = true;
        }
      }
    } catch {
      // the iterator only ends
    }
  })();
  void nc.closed().then(() => {
    connected = false;
    failAll(() => new NatsBrokerError('closed', 'NATS connection closed before the PubAck'));
  });

  const sender: AckedSender = {
    get connected() {
      return connected && !closed;
    },
    get inFlight() {
      return pending.size;
    },
    onSettled: undefined,
    send(subject, data, headers, owner, index) {
      if (closed || nc.isClosed()) return new NatsBrokerError('closed', 'NATS connection is closed');
      if (!connected) return new NatsBrokerError('disconnected', 'NATS connection is down (reconnecting)');
      const token = (seq++).toString(36);
      try {
        nc.publish(subject, data, { reply: base + token, headers });
      } catch (error) {
        return publishError(error, subject);
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
      failAll(() => new NatsBrokerError('closed', 'publisher closed before the PubAck'));
      try {
        sub.unsubscribe();
      } catch {
        // connection already closed
      }
    },
  };
  return sender;
}
