import type { EnvelopeDecoderOptions } from '../broker/envelope.ts';
import { createEnvelopeDecoder, createEnvelopeOpener } from '../broker/envelope.ts';
import type { AnyEvent } from '../messages/message.ts';
import { EMPTY_HEADERS, outboxRecordBody } from '../outbox/outbox-codec.ts';
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

/** The synchronous decode of the decoders {@link createLogDecoder} made without a catalog. */
const synchronous = new WeakMap<LogDecoder, (entry: EventLogEntry) => AnyEvent>();

/**
 * Creates a decoder of log entries. Give it a `catalog` of the event definitions to validate payloads (as a
 * broker consumer would), and the `serializers` of the outbox stores that wrote the entries if not JSON.
 */
export function createLogDecoder(options: EnvelopeDecoderOptions = {}): LogDecoder {
  if (options.catalog === undefined) {
    const open = createEnvelopeOpener(options);
    // The checks of decodeOutboxRecord (an entry is an outbox row), without building the publisher's message.
    const decodeNow = (entry: EventLogEntry): AnyEvent =>
      open(entry.headers ?? EMPTY_HEADERS, outboxRecordBody(entry)).event;
    const decoder: LogDecoder = {
      async decode(entry) {
        return decodeNow(entry);
      },
    };
    synchronous.set(decoder, decodeNow);
    return decoder;
  }
  const envelope = createEnvelopeDecoder(options);
  return {
    async decode(entry) {
      return envelope.decode(entry.headers ?? EMPTY_HEADERS, outboxRecordBody(entry));
    },
  };
}

/**
 * The synchronous form of `decoder.decode` when {@link createLogDecoder} made it without a catalog (nothing to
 * await), else `undefined`. It throws what `decode` rejects with. @internal
 */
export function synchronousLogDecode(decoder: LogDecoder): ((entry: EventLogEntry) => AnyEvent) | undefined {
  return synchronous.get(decoder);
}
