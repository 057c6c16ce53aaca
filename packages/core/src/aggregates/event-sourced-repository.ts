import type { PayloadSerializer } from '../broker/envelope.ts';
import type { ExpectedVersion } from '../errors/concurrency-error.ts';
import { ConfigurationError, SerializationError } from '../errors/cqrs-error.ts';
import type { EventStore, StreamSnapshot } from '../event-log/event-log.ts';
import { checkStreamId, DEFAULT_LOG_BATCH } from '../event-log/event-log.ts';
import { createLogDecoder } from '../event-log/log-decoder.ts';
import type { AnyEventDefinition, InferMessage } from '../messages/define-message.ts';
import type { AnyEvent } from '../messages/message.ts';
import { createMessageCatalog } from '../messages/message-catalog.ts';
import type { ActiveUnitOfWork } from '../unit-of-work/unit-of-work.ts';
import { resolveTransaction, type TransactionSource } from './transaction-source.ts';

/** Snapshots of an event-sourced repository. */
export interface SnapshotOptions<TState> {
  /** Save a snapshot each time the stream's version crosses a multiple of this many events. */
  readonly every: number;
  /**
   * Identifies the shape of the state and the `evolve` that built it. Snapshots saved under another revision
   * are ignored (the stream is replayed from its first event): change it whenever `evolve` or the state type
   * changes. @default 1
   */
  readonly revision?: string | number;
  /** Serializes the state. @default JSON.stringify */
  readonly encode?: (state: TState) => string;
  /** Reads a state `encode` wrote. @default JSON.parse */
  readonly decode?: (text: string) => TState;
}

/** Options of {@link createEventSourcedRepository}. */
export interface EventSourcedRepositoryOptions<
  TState,
  TDefinitions extends readonly AnyEventDefinition[],
  TTx,
> {
  /** Names the aggregate type; the stream of aggregate `id` is `<name>-<id>` unless `streamId` says otherwise. */
  readonly name: string;
  /** Where the events are stored (an `EventStore` of a storage package, or the in-memory one). */
  readonly store: EventStore<TTx>;
  /** The aggregate's event definitions: events read back are validated by them and typed. */
  readonly events: TDefinitions;
  /** The state of an aggregate that has no events yet. */
  readonly initialState: () => TState;
  /**
   * Applies one event to the state and returns the new state. Keep it pure: no I/O, no clock; it runs again on
   * every load.
   */
  readonly evolve: (state: TState, event: InferMessage<TDefinitions[number]>) => TState;
  /** Stream id of an aggregate id. @default `${name}-${id}` */
  readonly streamId?: (id: string) => string;
  /** Payload serializers of the outbox stores that wrote the events, if not JSON. */
  readonly serializers?: readonly PayloadSerializer[];
  /** Save snapshots so loading replays only the events after the last one. Default: no snapshots. */
  readonly snapshots?: SnapshotOptions<TState>;
}

/** An aggregate as loaded: its state and version (the number of its events; 0 when it has none). */
export interface LoadedAggregate<TState> {
  readonly id: string;
  readonly streamId: string;
  readonly state: TState;
  readonly version: number;
}

/** What {@link EventSourcedRepository.update} returns. */
export interface AggregateUpdate<TState, TEvent> extends LoadedAggregate<TState> {
  /** The events the decision produced and the append stored (empty when it decided nothing). */
  readonly events: readonly TEvent[];
}

/**
 * Loads event-sourced aggregates and appends their events with an expected version, in a transaction: one you
 * pass, or the unit of work's when you pass a handler's context. Inside a unit of work the appended events are
 * reported to it, so it dispatches them to in-process handlers after the commit and does not append them again.
 */
export interface EventSourcedRepository<TState, TEvent extends AnyEvent, TTx> {
  readonly name: string;
  /** The stream id of an aggregate id. */
  streamIdOf(id: string): string;
  /**
   * Replays the aggregate's events (after its snapshot, if any) through `evolve`, in the caller's transaction.
   * @throws ValidationError (`CQRS_VALIDATION`) for a malformed id; the decoding errors of a stored event
   *   (EnvelopeError, UnknownMessageTypeError, ValidationError); StorageError
   */
  load(tx: TransactionSource<TTx>, id: string): Promise<LoadedAggregate<TState>>;
  /**
   * Appends events to the aggregate's stream if its version is still `expectedVersion`. Pass the `state` they
   * apply to (as loaded) to let the repository save a snapshot when one is due.
   * @throws ConcurrencyError (`CQRS_CONCURRENCY`) when another writer appended first; the append errors of the
   *   store
   */
  append(
    tx: TransactionSource<TTx>,
    id: string,
    events: readonly TEvent[],
    options: { readonly expectedVersion: ExpectedVersion; readonly state?: TState },
  ): Promise<{ readonly version: number }>;
  /**
   * Loads the aggregate, asks `decide` for the events a command produces given its state, and appends them
   * expecting the version it loaded; returns the new state and version. A writer that appended in between
   * makes it fail with a ConcurrencyError: re-run the handler (see `isConcurrencyError`).
   */
  update(
    tx: TransactionSource<TTx>,
    id: string,
    decide: (
      state: TState,
      aggregate: LoadedAggregate<TState>,
    ) => TEvent | readonly TEvent[] | Promise<TEvent | readonly TEvent[]>,
  ): Promise<AggregateUpdate<TState, TEvent>>;
}

/**
 * Builds a repository of event-sourced aggregates: a stream per aggregate in the event log, loaded by replaying
 * its events through a pure `evolve(state, event)`, appended with an expected version, with optional snapshots
 * every N events. Works in a transaction of the store's driver: the caller's own, or the one a unit of work
 * gives its handler.
 *
 * @example
 * const carts = createEventSourcedRepository({
 *   name: 'cart', store, events: [ItemAdded], initialState: () => ({ items: 0 }),
 *   evolve: (s, e) => ({ items: s.items + e.payload.quantity }),
 * });
 * await carts.update(tx, 'c-1', (s) => (s.items >= 10 ? [] : [ItemAdded.create({ quantity: 1 })]));
 * @throws ConfigurationError (`CQRS_CONFIGURATION`) for a missing or malformed option
 */
export function createEventSourcedRepository<
  TState,
  const TDefinitions extends readonly AnyEventDefinition[],
  TTx,
>(
  options: EventSourcedRepositoryOptions<TState, TDefinitions, TTx>,
): EventSourcedRepository<TState, InferMessage<TDefinitions[number]>, TTx> {
  type TEvent = InferMessage<TDefinitions[number]>;
  const { name, store, initialState, evolve } = options;
  if (typeof name !== 'string' || name.length === 0 || name.length > 100)
    throw new ConfigurationError('event-sourced repository: name must be 1 to 100 characters');
  const label = `${name} repository`;
  if (typeof store?.loadStream !== 'function' || typeof store.appendToStream !== 'function')
    throw new ConfigurationError(`${label}: store must be an EventStore (loadStream, appendToStream)`);
  if (typeof initialState !== 'function')
    throw new ConfigurationError(`${label}: initialState must be a function`);
  if (typeof evolve !== 'function') throw new ConfigurationError(`${label}: evolve must be a function`);
  if (!Array.isArray(options.events) || options.events.length === 0)
    throw new ConfigurationError(`${label}: events must list the aggregate's event definitions`);
  for (const d of options.events) {
    if (d?.kind !== 'event') throw new ConfigurationError(`${label}: events must be event definitions`);
  }
  const decoder = createLogDecoder({
    catalog: createMessageCatalog(options.events),
    ...(options.serializers === undefined ? {} : { serializers: options.serializers }),
  });
  const streamIdOf = (id: string): string => {
    checkStreamId(id, `${label} id`);
    return checkStreamId(options.streamId ? options.streamId(id) : `${name}-${id}`, `${label} stream id`);
  };

  const snapshots = options.snapshots;
  let every = 0;
  let revision = '';
  let encode: (state: TState) => string = JSON.stringify;
  let decode: (text: string) => TState = JSON.parse;
  if (snapshots !== undefined) {
    every = snapshots.every;
    if (!Number.isSafeInteger(every) || every < 1)
      throw new ConfigurationError(`${label}: snapshots.every must be a positive integer`);
    revision = String(snapshots.revision ?? 1);
    if (snapshots.encode) encode = snapshots.encode;
    if (snapshots.decode) decode = snapshots.decode;
  }
  const snapshotText = (state: TState): string => {
    const text = encode(state);
    if (typeof text !== 'string')
      throw new SerializationError(`${label}: snapshots.encode must return a string`);
    return JSON.stringify([revision, text]);
  };
  const snapshotState = (snapshot: StreamSnapshot): TState | undefined => {
    try {
      const parsed = JSON.parse(snapshot.state) as unknown;
      if (!Array.isArray(parsed) || parsed[0] !== revision || typeof parsed[1] !== 'string') return undefined;
      return decode(parsed[1]);
    } catch {
      // An unreadable snapshot is only a cache: replay the stream instead.
      return undefined;
    }
  };

  const replay = async (tx: TTx, streamId: string, useSnapshot: boolean) => {
    let first = await store.loadStream(tx, streamId, { useSnapshot, limit: DEFAULT_LOG_BATCH });
    let state: TState | undefined;
    if (first.snapshot !== undefined) {
      state = snapshotState(first.snapshot);
      if (state === undefined) first = await store.loadStream(tx, streamId, { limit: DEFAULT_LOG_BATCH });
    }
    state ??= initialState();
    let batch = first.events;
    let last = 0;
    for (;;) {
      for (const entry of batch) {
        state = evolve(state, (await decoder.decode(entry)) as TEvent);
        last = entry.streamVersion ?? last;
      }
      if (batch.length < DEFAULT_LOG_BATCH || last >= first.version) break;
      batch = (await store.loadStream(tx, streamId, { fromVersion: last + 1, limit: DEFAULT_LOG_BATCH }))
        .events;
      if (batch.length === 0) break;
    }
    return { state, version: first.version };
  };

  /** Appends; `after` (the state the events lead to) lets it save a snapshot when one is due. */
  const append = async (
    tx: TTx,
    unit: ActiveUnitOfWork | undefined,
    id: string,
    events: readonly TEvent[],
    expected: ExpectedVersion,
    after: (() => TState) | undefined,
  ) => {
    const streamId = streamIdOf(id);
    let snapshot: StreamSnapshot | undefined;
    if (every > 0 && after !== undefined && typeof expected === 'number' && Array.isArray(events)) {
      const version = expected + events.length;
      if (Math.floor(version / every) > Math.floor(expected / every)) {
        snapshot = { version, state: snapshotText(after()) };
      }
    }
    const result = await store.appendToStream(
      tx,
      streamId,
      events,
      snapshot === undefined ? { expectedVersion: expected } : { expectedVersion: expected, snapshot },
    );
    if (unit !== undefined && events.length > 0) unit.appended(events);
    return result;
  };
  const txOf = (source: TransactionSource<TTx>) => resolveTransaction<TTx>(source, label);
  const evolveAll = (state: TState, events: readonly TEvent[]) => {
    let s = state;
    for (const e of events) s = evolve(s, e);
    return s;
  };

  const repository: EventSourcedRepository<TState, TEvent, TTx> = {
    name,
    streamIdOf,
    async load(source, id) {
      const { tx } = txOf(source);
      const streamId = streamIdOf(id);
      const { state, version } = await replay(tx, streamId, every > 0);
      return { id, streamId, state, version };
    },
    async append(source, id, events, opts) {
      const { tx, unit } = txOf(source);
      const before = opts?.state;
      const after = before === undefined ? undefined : () => evolveAll(before, events);
      const { version } = await append(tx, unit, id, events, opts?.expectedVersion, after);
      return { version };
    },
    async update(source, id, decide) {
      const { tx, unit } = txOf(source);
      const streamId = streamIdOf(id);
      const loaded = await replay(tx, streamId, every > 0);
      const aggregate = { id, streamId, state: loaded.state, version: loaded.version };
      const decided = await decide(loaded.state, aggregate);
      const events: readonly TEvent[] = Array.isArray(decided) ? decided : [decided as TEvent];
      if (events.length === 0) return { ...aggregate, events };
      let state: TState | undefined;
      const after = () => (state ??= evolveAll(loaded.state, events));
      const { version } = await append(tx, unit, id, events, loaded.version, after);
      return { id, streamId, state: after(), version, events };
    },
  };
  return Object.freeze(repository);
}
