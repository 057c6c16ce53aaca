import { BrokerError, ConfigurationError } from '@cqrs-ts/core';
import type { JetStreamManager, StreamConfig, StreamInfo } from '@nats-io/jetstream';
import { JetStreamApiCodes, JetStreamApiError, jetstreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { nanos } from '@nats-io/transport-node';
import { assertInt, assertName, isValidSubjectFilter } from './nats-options.ts';

/** Options of {@link ensureNatsStream}. */
export interface EnsureNatsStreamOptions {
  readonly connection: NatsConnection;
  /** Stream name, e.g. `CQRS` or `ORDERS`. */
  readonly name: string;
  /** Subjects (filters) the stream captures, e.g. `['cqrs.>']` or `['cqrs.orders', 'cqrs.orders.>']`. */
  readonly subjects: readonly string[];
  /** @default 'file' */
  readonly storage?: 'file' | 'memory';
  /** JetStream drops a message whose `Nats-Msg-Id` it saw within this window. @default 120000 (2 min) */
  readonly duplicateWindowMs?: number;
  /** Messages older than this are removed; 0 keeps them. @default 0 */
  readonly maxAgeMs?: number;
  /** Largest message the stream accepts, in bytes; -1 for the server's limit. @default -1 */
  readonly maxMsgSize?: number;
  /** Stream size limit in bytes; -1 for none. @default -1 */
  readonly maxBytes?: number;
  /** @default 1 */
  readonly replicas?: number;
  /**
   * What to do when a stream of that name exists with other subjects: `merge` adds the missing ones (default),
   * `replace` sets exactly `subjects`, `fail` throws.
   */
  readonly onSubjectMismatch?: 'merge' | 'replace' | 'fail';
}

/** What {@link ensureNatsStream} did. */
export interface EnsuredNatsStream {
  readonly name: string;
  readonly subjects: readonly string[];
  readonly created: boolean;
  readonly updated: boolean;
  /** Messages in the stream at the time of the call. */
  readonly messages: number;
}

const isNotFound = (error: unknown) =>
  error instanceof JetStreamApiError && error.code === JetStreamApiCodes.StreamNotFound;

/**
 * Creates the stream, or brings an existing one in line (subjects, duplicate window, limits). Idempotent: a
 * matching stream is left untouched. Safe to call at every start-up.
 * @throws ConfigurationError (bad options), BrokerError (`topology`: the server refused, e.g. overlapping subjects;
 * `unavailable`: JetStream is not enabled).
 */
export async function ensureNatsStream(options: EnsureNatsStreamOptions): Promise<EnsuredNatsStream> {
  const name = assertName(options.name, 'ensureNatsStream: name');
  const subjects = options.subjects;
  if (!Array.isArray(subjects) || subjects.length === 0 || !subjects.every(isValidSubjectFilter)) {
    throw new ConfigurationError(
      `ensureNatsStream ${name}: subjects must be a non-empty list of subject filters`,
    );
  }
  const storage = options.storage ?? 'file';
  if (storage !== 'file' && storage !== 'memory') {
    throw new ConfigurationError(`ensureNatsStream ${name}: storage must be 'file' or 'memory'`);
  }
  const duplicateWindowMs = assertInt(options.duplicateWindowMs ?? 120_000, 'duplicateWindowMs', 100);
  const maxAgeMs = assertInt(options.maxAgeMs ?? 0, 'maxAgeMs', 0);
  const maxMsgSize = assertInt(options.maxMsgSize ?? -1, 'maxMsgSize', -1);
  const maxBytes = assertInt(options.maxBytes ?? -1, 'maxBytes', -1);
  const replicas = assertInt(options.replicas ?? 1, 'replicas', 1, 5);
  const mismatch = options.onSubjectMismatch ?? 'merge';

  let jsm: JetStreamManager;
  try {
    jsm = await jetstreamManager(options.connection);
  } catch (cause) {
    throw new BrokerError('unavailable', `ensureNatsStream ${name}: JetStream is not available`, { cause });
  }
  const wanted = {
    duplicate_window: nanos(duplicateWindowMs),
    max_age: nanos(maxAgeMs),
    max_msg_size: maxMsgSize,
    max_bytes: maxBytes,
    num_replicas: replicas,
  };
  const lookup = async (): Promise<StreamInfo | undefined> => {
    try {
      return await jsm.streams.info(name);
    } catch (error) {
      if (isNotFound(error)) return undefined;
      throw new BrokerError('topology', `ensureNatsStream ${name}: ${(error as Error).message}`, {
        cause: error,
      });
    }
  };
  let info = await lookup();
  try {
    if (info === undefined) {
      try {
        const created = await jsm.streams.add({
          name,
          subjects: [...subjects],
          storage: storage as StreamConfig['storage'],
          ...wanted,
        });
        return {
          name,
          subjects: created.config.subjects ?? [...subjects],
          created: true,
          updated: false,
          messages: 0,
        };
      } catch (error) {
        // Created concurrently by another process with another config: reconcile below.
        info = await lookup();
        if (info === undefined) throw error;
      }
    }
    const current = info.config;
    const have = current.subjects ?? [];
    const missing = subjects.filter((s) => !have.includes(s));
    let nextSubjects = have;
    if (mismatch === 'replace') {
      if (missing.length > 0 || have.length !== subjects.length) nextSubjects = [...subjects];
    } else if (missing.length > 0) {
      if (mismatch === 'fail') {
        throw new ConfigurationError(
          `ensureNatsStream ${name}: stream exists with subjects ${have.join(', ')}, missing ${missing.join(', ')}`,
        );
      }
      nextSubjects = [...have, ...missing];
    }
    const differs =
      nextSubjects !== have ||
      current.duplicate_window !== wanted.duplicate_window ||
      current.max_age !== wanted.max_age ||
      current.max_msg_size !== wanted.max_msg_size ||
      current.max_bytes !== wanted.max_bytes ||
      current.num_replicas !== wanted.num_replicas;
    if (!differs) {
      return { name, subjects: have, created: false, updated: false, messages: info.state.messages };
    }
    const updated = await jsm.streams.update(name, { ...current, subjects: nextSubjects, ...wanted });
    return {
      name,
      subjects: updated.config.subjects ?? nextSubjects,
      created: false,
      updated: true,
      messages: updated.state.messages,
    };
  } catch (error) {
    if (error instanceof ConfigurationError) throw error;
    throw new BrokerError('topology', `ensureNatsStream ${name}: ${(error as Error).message}`, {
      cause: error,
    });
  }
}
