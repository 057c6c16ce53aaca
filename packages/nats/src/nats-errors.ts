import { BrokerError } from '@cqrs-ts/core';
import type { MsgHdrs } from '@nats-io/transport-node';
import { errors as natsErrors } from '@nats-io/transport-node';

/**
 * How this package classifies NATS failures into `BrokerError` reasons:
 *
 * - PubAck `503` (no stream captures the subject, no responders), or a JetStream error of code `503` (the
 *   JetStream system temporarily unavailable, e.g. while a restarted server recovers) → `unavailable`
 * - PubAck JetStream error `10054` / "message size exceeds" → `too-large` (`nativeCode` is the `err_code`)
 * - any other PubAck error or unreadable PubAck → `rejected`
 * - no PubAck within `timeoutMs` → `timeout`; connection lost before it → `connection`
 * - connection closed or draining, publisher closed → `closed`
 * - invalid subject or header → `invalid`; over the server's `max_payload` → `too-large`
 * - aborted before sending → `cancelled`; after a failure the rest of its key → `skipped`
 * - declaring a stream or a durable failed → `topology`; JetStream not enabled → `unavailable`
 */

const STREAM_ACK_PREFIX = new TextEncoder().encode('{"stream":');
const utf8 = new TextDecoder();

function isStreamAck(data: Uint8Array): boolean {
  if (data.length <= STREAM_ACK_PREFIX.length) return false;
  for (let i = 0; i < STREAM_ACK_PREFIX.length; i++) if (data[i] !== STREAM_ACK_PREFIX[i]) return false;
  return true;
}

/** Classifies a PubAck reply: `undefined` when JetStream stored the message (or had it already). @internal */
export function classifyPubAck(
  data: Uint8Array,
  headers: MsgHdrs | undefined,
  subject: string,
): BrokerError | undefined {
  const code = headers?.code ?? 0;
  if (code === 503) {
    return new BrokerError(
      'unavailable',
      `nats: no JetStream stream captures subject ${subject} (no responders)`,
      { nativeCode: 503 },
    );
  }
  if (isStreamAck(data)) return undefined;
  if (code >= 300) {
    return new BrokerError(
      'rejected',
      `nats: publish to ${subject} failed: ${code} ${headers?.description ?? ''}`,
      { nativeCode: code },
    );
  }
  let reply: { stream?: unknown; error?: { code?: number; err_code?: number; description?: string } };
  try {
    reply = JSON.parse(utf8.decode(data)) as typeof reply;
  } catch (cause) {
    return new BrokerError('rejected', `nats: publish to ${subject}: unreadable PubAck`, { cause });
  }
  const error = reply?.error;
  if (error !== undefined && error !== null) {
    const description = String(error.description ?? 'unknown error').slice(0, 500);
    const apiCode = typeof error.err_code === 'number' ? error.err_code : undefined;
    const native = apiCode !== undefined ? { nativeCode: apiCode } : {};
    // 10054: message size exceeds the stream's max_msg_size; the same message can never be stored.
    if (apiCode === 10054 || /message size exceeds/i.test(description)) {
      return new BrokerError('too-large', `nats: publish to ${subject} rejected: ${description}`, native);
    }
    // 503 in the body: JetStream itself cannot take messages now (10008 "temporarily unavailable" while a
    // restarted server recovers its streams, not enabled, no leader); any message would fail alike.
    if (error.code === 503 || apiCode === 10008) {
      return new BrokerError('unavailable', `nats: publish to ${subject}: ${description}`, native);
    }
    return new BrokerError('rejected', `nats: publish to ${subject} rejected: ${description}`, native);
  }
  if (typeof reply?.stream === 'string' && reply.stream.length > 0) return undefined;
  return new BrokerError('rejected', `nats: publish to ${subject}: invalid PubAck`);
}

/** Classifies an error thrown by `publish` of the NATS client. @internal */
export function classifyPublishError(error: unknown, subject: string): BrokerError {
  if (
    error instanceof natsErrors.ClosedConnectionError ||
    error instanceof natsErrors.DrainingConnectionError
  ) {
    return new BrokerError('closed', 'nats: connection is closed', { cause: error });
  }
  if (error instanceof natsErrors.InvalidSubjectError) {
    return new BrokerError('invalid', `nats: invalid subject ${JSON.stringify(subject.slice(0, 200))}`, {
      cause: error,
    });
  }
  const text = error instanceof Error ? error.message : String(error);
  if (/max_payload/i.test(text)) {
    return new BrokerError('too-large', `nats: message to ${subject} exceeds the server's max_payload`, {
      cause: error,
    });
  }
  if (error instanceof natsErrors.InvalidArgumentError) {
    return new BrokerError('invalid', `nats: publish to ${subject}: ${text}`, { cause: error });
  }
  return new BrokerError('rejected', `nats: publish to ${subject}: ${text}`, { cause: error });
}
