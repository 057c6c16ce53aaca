import { BrokerError, isDestinationFailure } from '@cqrs-ts/core';
import { headers, errors as natsErrors } from '@nats-io/transport-node';
import { describe, expect, it } from 'vitest';
import { classifyPubAck, classifyPublishError } from '../src/nats-errors.ts';

const utf8 = new TextEncoder();
const ack = (body: unknown) => utf8.encode(JSON.stringify(body));

describe('nats error classification', () => {
  it('reads a PubAck: stored, no responders, too large, rejected, unreadable', () => {
    expect(classifyPubAck(ack({ stream: 'S', seq: 1 }), undefined, 'a.b')).toBeUndefined();
    const noResponders = headers(503, 'No Responders');
    const unavailable = classifyPubAck(new Uint8Array(), noResponders, 'a.b');
    expect(unavailable).toMatchObject({ reason: 'unavailable', retryable: true, nativeCode: 503 });
    expect(isDestinationFailure(unavailable)).toBe(true);
    const tooLarge = classifyPubAck(
      ack({ error: { code: 400, err_code: 10054, description: 'message size exceeds maximum allowed' } }),
      undefined,
      'a.b',
    );
    expect(tooLarge).toMatchObject({ reason: 'too-large', retryable: false, nativeCode: 10054 });
    const rejected = classifyPubAck(
      ack({ error: { code: 400, err_code: 10060, description: 'expected stream does not match' } }),
      undefined,
      'a.b',
    );
    expect(rejected).toMatchObject({ reason: 'rejected', retryable: true, scope: 'message' });
    // a restarted server's JetStream before it recovered: the destination is down, not the message
    const recovering = classifyPubAck(
      ack({ error: { code: 503, err_code: 10008, description: 'JetStream system temporarily unavailable' } }),
      undefined,
      'a.b',
    );
    expect(recovering).toMatchObject({ reason: 'unavailable', retryable: true, nativeCode: 10008 });
    expect(isDestinationFailure(recovering)).toBe(true);
    expect(classifyPubAck(utf8.encode('{oops'), undefined, 'a.b')).toMatchObject({ reason: 'rejected' });
    expect(classifyPubAck(ack({}), undefined, 'a.b')).toMatchObject({ reason: 'rejected' });
  });

  it('classifies client publish errors: closed, invalid subject, over max_payload, other', () => {
    const closed = classifyPublishError(new natsErrors.ClosedConnectionError(), 'a.b');
    expect(closed).toMatchObject({ reason: 'closed', scope: 'destination' });
    expect(classifyPublishError(new natsErrors.InvalidSubjectError('a b'), 'a b')).toMatchObject({
      reason: 'invalid',
      retryable: false,
    });
    expect(classifyPublishError(new Error('message exceeds max_payload'), 'a.b')).toMatchObject({
      reason: 'too-large',
      retryable: false,
    });
    const other = classifyPublishError(new Error('boom'), 'a.b');
    expect(other).toBeInstanceOf(BrokerError);
    expect(other).toMatchObject({ reason: 'rejected', retryable: true });
  });
});
