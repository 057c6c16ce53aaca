import type { EnvelopeDecoderOptions } from '../broker/envelope.ts';
import { createEnvelopeDecoder } from '../broker/envelope.ts';
import type { AnyEvent } from '../messages/message.ts';
import { decodeOutboxRecord } from '../outbox/outbox-codec.ts';
import type { OutboxRecord } from '../outbox/outbox-record.ts';
import type { EventLogEntry } from './event-log.ts';

/** Turns log entries back into events. */
export interface LogDecoder {
  /**
   * Decompresses, deserializes and (with a catalog) validates one entry into the event that was appended, with
   * its metadata (request, correlation and causation ids, time, tenant, ...).
   * @throws EnvelopeError (`CQRS_ENVELOPE`), SerializationError, UnknownMessageTypeError, ValidationError: the
   *   stored bytes are not an event this decoder accepts.
   */
  decode(entry: EventLogEntry): Promise<AnyEvent>;
}

/**
 * Creates a decoder of log entries. Give it a `catalog` of the event definitions to validate payloads (as a
 * broker consumer would), and the `serializers` of the outbox stores that wrote the entries if not JSON.
 */
export function createLogDecoder(options: EnvelopeDecoderOptions = {}): LogDecoder {
  const envelope = createEnvelopeDecoder(options);
  return {
    decode(entry) {
      const message = decodeOutboxRecord(entry as unknown as OutboxRecord);
      return envelope.decode(message.headers, message.body);
    },
  };
}
