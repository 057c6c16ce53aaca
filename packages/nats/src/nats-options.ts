import type { Logger, MessageProcessorOptions } from '@cqrs-ts/core';
import { ConfigurationError } from '@cqrs-ts/core';
import type { EnvelopeCompression, OutboxMessage, PayloadSerializer } from '@cqrs-ts/core/spi';
import type { ConnectionOptions, NatsConnection } from '@nats-io/transport-node';
import { connect } from '@nats-io/transport-node';

/**
 * Where a publisher or consumer gets its connection: bring your own `connection` (you own its lifecycle; give it
 * `maxReconnectAttempts: -1` so it outlives long outages), or `servers`, and the component opens one (reconnecting
 * forever) and closes it on `close()`/`stop()`.
 */
export interface NatsConnectionSource {
  /** A connection from `connect()` of `@nats-io/transport-node`; not closed by cqrs-ts. */
  readonly connection?: NatsConnection;
  /** Servers to connect to when no `connection` is given. @default '127.0.0.1:4222' */
  readonly servers?: string | readonly string[];
  /** Extra options for the connection cqrs-ts opens (name, auth, tls, ...). */
  readonly connectionOptions?: Partial<ConnectionOptions>;
}

/** Options of `createNatsPublisher`. */
export interface NatsPublisherOptions extends NatsConnectionSource {
  /** Subjects are `<subjectPrefix>.<topic>`. @default 'cqrs' */
  readonly subjectPrefix?: string;
  /** Overrides the subject of a message (must return a concrete subject a stream captures). */
  readonly subject?: (message: OutboxMessage) => string;
  /** Compresses data of at least `thresholdBytes`, marked by the `ce-contentencoding` header. */
  readonly compression?: EnvelopeCompression;
  /** Wait this long for each PubAck; then the message fails (retryable). @default 5000 */
  readonly timeoutMs?: number;
  /** Messages awaiting a PubAck at once, over all concurrent `publish` calls. @default 1024 */
  readonly maxInFlight?: number;
  /** Adds `Nats-Expected-Stream`: JetStream rejects the message unless this stream stores it. */
  readonly expectStream?: string;
  /** Prefix of the PubAck reply subjects (must be allowed by your permissions). @default '_INBOX' */
  readonly inboxPrefix?: string;
  /** `publishEvents` only: CloudEvents `source`. @default 'cqrs-ts' */
  readonly source?: string;
  /** `publishEvents` only: payload serializer. @default JSON */
  readonly serializer?: PayloadSerializer;
  /** `publishEvents` only: largest serialized payload, before compression. @default 1048576 */
  readonly maxPayloadBytes?: number;
}

/** Where dead letters go. */
export interface NatsDeadLetterOptions {
  /** Subject of the dead letters. @default `cqrs-dlq.<stream>.<name>` */
  readonly subject?: string;
  /**
   * Stream created (idempotently) at start to store them, capturing `subject`; `false` when you manage it.
   * @default `<stream>_DLQ`
   */
  readonly stream?: string | false;
}

/** Options of `createNatsConsumer`: the connection, the JetStream consumer and the message processor. */
export interface NatsConsumerOptions extends NatsConnectionSource, Omit<MessageProcessorOptions, 'name'> {
  /** The stream to consume. It must exist (see `ensureNatsStream`). */
  readonly stream: string;
  /** Durable consumer name; also the inbox consumer key. Instances sharing it share the work. */
  readonly name: string;
  /** Only these subjects of the stream (filters). Default: all of them. */
  readonly filterSubjects?: string | readonly string[];
  /** Handlers running at once. Same-key messages (`ce-partitionkey`) run one after another. @default 16 */
  readonly concurrency?: number;
  /** Server-side cap of delivered, unacknowledged messages for this durable. @default max(64, 4 x concurrency) */
  readonly maxAckPending?: number;
  /** JetStream redelivers a message not acknowledged within this time; long handlers send progress. @default 30000 */
  readonly ackWaitMs?: number;
  /** A new durable starts at the first message of the stream (`all`) or at new ones (`new`). @default 'all' */
  readonly deliverPolicy?: 'all' | 'new';
  readonly deadLetter?: NatsDeadLetterOptions;
  /** `stop()` waits this long for running handlers, then closes anyway (they are redelivered). @default 30000 */
  readonly stopTimeoutMs?: number;
  /**
   * Lifetime of each pull request. Short requests let the server forget the requests of a crashed instance
   * quickly (messages routed to them wait for `ackWaitMs` again). @default 5000
   */
  readonly pullExpiresMs?: number;
  /** PubAck wait of dead-letter publishes. @default 5000 */
  readonly publishTimeoutMs?: number;
  readonly logger?: Logger;
}

/** A connection and whether cqrs-ts opened it (and so must close it). @internal */
export interface OpenedConnection {
  readonly nc: NatsConnection;
  readonly owned: boolean;
}

/** Opens (or adopts) the connection described by `source`. @internal */
export async function openConnection(source: NatsConnectionSource, name: string): Promise<OpenedConnection> {
  if (source.connection !== undefined) {
    const nc = source.connection;
    if (nc === null || typeof nc.publish !== 'function' || typeof nc.subscribe !== 'function') {
      throw new ConfigurationError(`${name}: connection is not a NATS connection`);
    }
    if (nc.isClosed()) throw new ConfigurationError(`${name}: connection is closed`);
    return { nc, owned: false };
  }
  const servers = source.servers ?? '127.0.0.1:4222';
  const nc = await connect({
    name,
    maxReconnectAttempts: -1,
    reconnectTimeWait: 500,
    reconnectJitter: 250,
    waitOnFirstConnect: true,
    ...source.connectionOptions,
    servers: typeof servers === 'string' ? servers : [...servers],
  });
  return { nc, owned: true };
}

const BAD_TOKEN = /[\s*>]/;

/**
 * True for a concrete (wildcard-free) NATS subject: dot-separated non-empty tokens without whitespace, `*` or
 * `>`, at most 512 chars.
 */
export function isValidSubject(subject: unknown): subject is string {
  if (typeof subject !== 'string' || subject.length === 0 || subject.length > 512) return false;
  if (BAD_TOKEN.test(subject)) return false;
  return !subject.startsWith('.') && !subject.endsWith('.') && !subject.includes('..');
}

/** True for a subject filter: like {@link isValidSubject} but `*` tokens and a final `>` token are allowed. */
export function isValidSubjectFilter(filter: unknown): filter is string {
  if (typeof filter !== 'string' || filter.length === 0 || filter.length > 512) return false;
  const tokens = filter.split('.');
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i]!;
    if (t === '*' || (t === '>' && i === tokens.length - 1)) continue;
    if (t.length === 0 || BAD_TOKEN.test(t)) return false;
  }
  return true;
}

/**
 * The `filterSubjects` option as a list (none: every subject), each one checked. @internal
 * @throws ConfigurationError naming `what` for an invalid filter
 */
export function subjectFilters(value: string | readonly string[] | undefined, what: string): string[] {
  const filters = value === undefined ? [] : typeof value === 'string' ? [value] : [...value];
  for (const f of filters) {
    if (!isValidSubjectFilter(f))
      throw new ConfigurationError(`${what}: invalid filter subject ${JSON.stringify(String(f))}`);
  }
  return filters;
}

const STREAM_NAME = /^[^\s.*>/\\]{1,255}$/;

/** Throws a ConfigurationError unless `name` is a valid JetStream stream or consumer name. @internal */
export function assertName(name: unknown, what: string): string {
  if (typeof name !== 'string' || !STREAM_NAME.test(name) || name.includes('\0')) {
    throw new ConfigurationError(
      `${what} must be 1..255 chars without whitespace, '.', '*', '>', '/' or '\\', got ${JSON.stringify(String(name).slice(0, 80))}`,
    );
  }
  return name;
}

/** Throws a ConfigurationError unless `value` is an integer within [min, max]. @internal */
export function assertInt(value: number, what: string, min: number, max = Number.MAX_SAFE_INTEGER): number {
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new ConfigurationError(`${what} must be an integer in [${min}, ${max}], got ${String(value)}`);
  }
  return value;
}
