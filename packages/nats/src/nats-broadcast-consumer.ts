import { ConfigurationError } from '@cqrs-ts/core';
import {
  type BroadcastConsumer,
  type BroadcastConsumerOptions,
  type BroadcastSubscription,
  createBroadcastConsumer,
} from '@cqrs-ts/core/spi';
import { DeliverPolicy, jetstreamManager } from '@nats-io/jetstream';
import { nanos } from '@nats-io/transport-node';
import { attributesFromHeaders } from './nats-consumer.ts';
import { assertName, type NatsConnectionSource, openConnection, subjectFilters } from './nats-options.ts';

/** Options of {@link createNatsBroadcastConsumer}. */
export interface NatsBroadcastConsumerOptions extends NatsConnectionSource, BroadcastConsumerOptions {
  /** The stream to read. It must exist (see `ensureNatsStream`). */
  readonly stream: string;
  /** Only these subjects of the stream (filters). Default: all of them. */
  readonly filterSubjects?: string | readonly string[];
  /**
   * Where each instance starts: messages stored after `start()` (`'new'`), the whole stream (`'all'`), or a
   * stream sequence. @default 'new'
   */
  readonly from?: 'new' | 'all' | { readonly sequence: number };
  /** The server deletes the consumer of an instance that vanished (crashed) after this idle time. @default 30000 */
  readonly inactiveThresholdMs?: number;
}

/**
 * A broadcast (non-competing) consumer of a JetStream stream: each instance reads through its own ordered
 * consumer (ephemeral, no acks, named `<instance>_<n>`; recreated by the client after a gap or a reconnection),
 * so every instance sees every message. `stop()` deletes it. See `BroadcastConsumer` for the semantics.
 * @throws ConfigurationError on bad options
 */
export function createNatsBroadcastConsumer(options: NatsBroadcastConsumerOptions): BroadcastConsumer {
  const what = 'nats broadcast consumer';
  if (options === null || typeof options !== 'object')
    throw new ConfigurationError(`${what}: options required`);
  const stream = assertName(options.stream, `${what}: stream`);
  assertName(options.name, `${what}: name`);
  const filters = subjectFilters(options.filterSubjects, what);
  const from = options.from ?? 'new';
  if (
    from !== 'new' &&
    from !== 'all' &&
    !(typeof from === 'object' && Number.isSafeInteger(from?.sequence) && from.sequence >= 1)
  )
    throw new ConfigurationError(`${what}: from must be 'new', 'all' or { sequence: n >= 1 }`);
  const inactiveMs = options.inactiveThresholdMs ?? 30_000;
  if (!(Number.isSafeInteger(inactiveMs) && inactiveMs >= 1000))
    throw new ConfigurationError(`${what}: inactiveThresholdMs must be an integer >= 1000`);

  return createBroadcastConsumer({
    ...options,
    what,
    source: {
      async open({ instance, deliver, failed, reconnected }): Promise<BroadcastSubscription> {
        const opened = await openConnection(options, `cqrs-ts ${what} ${instance}`);
        const closeConnection = async () => {
          if (opened.owned) await opened.nc.close().catch(() => undefined);
        };
        try {
          const jsm = await jetstreamManager(opened.nc);
          // 'new' is the sequence after the last one stored now: nothing published after open() is missed,
          // however late the client creates the server-side consumer
          const startSeq =
            from === 'all'
              ? undefined
              : from === 'new'
                ? (await jsm.streams.info(stream)).state.last_seq + 1
                : from.sequence;
          const consumer = await jsm.jetstream().consumers.get(stream, {
            name_prefix: instance,
            ...(filters.length > 0 ? { filter_subjects: filters } : {}),
            ...(startSeq === undefined
              ? { deliver_policy: DeliverPolicy.All }
              : { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: startSeq }),
            inactive_threshold: nanos(inactiveMs),
          });
          const messages = await consumer.consume();
          let serverName: string | undefined;
          let connected = true;
          void (async () => {
            for await (const s of messages.status()) {
              if (s.type === 'ordered_consumer_recreated') {
                if (serverName !== undefined) reconnected();
                serverName = s.name;
                connected = true;
              } else if (s.type === 'heartbeats_missed' || s.type === 'stream_not_found') {
                connected = false;
                failed(new Error(`nats: ${s.type}`));
              }
            }
          })().catch(() => undefined);
          // the client reconnects by itself; the ordered consumer resumes after its last sequence
          const statuses = opened.nc.status();
          void (async () => {
            for await (const s of statuses) {
              if (s.type === 'disconnect') connected = false;
              else if (s.type === 'reconnect') {
                connected = true;
                reconnected();
              }
            }
          })().catch(() => undefined);
          const loop = (async () => {
            for await (const m of messages) {
              await deliver({
                attributes: attributesFromHeaders(m.headers),
                data: m.data,
                deliveryAttempt: 1,
                source: m.subject,
              });
            }
          })().catch(failed);
          return {
            connected: () => connected && !opened.nc.isClosed(),
            async close() {
              (statuses as { stop?: () => void }).stop?.();
              await messages.close().catch(() => undefined);
              await loop;
              const names = serverName === undefined ? [] : [serverName];
              // the consumer may have been created (or re-created) after the last status we saw
              for await (const c of jsm.consumers.list(stream)) {
                if (c.name.startsWith(`${instance}_`) && !names.includes(c.name)) names.push(c.name);
              }
              for (const n of names) await jsm.consumers.delete(stream, n).catch(() => undefined);
              await closeConnection();
            },
          };
        } catch (error) {
          await closeConnection();
          throw error;
        }
      },
    },
  });
}
