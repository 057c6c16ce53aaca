import { AsyncLocalStorage } from 'node:async_hooks';
import { CancelledError, ConfigurationError, ProcessingError } from '../errors/cqrs-error.ts';
import { StorageError } from '../errors/storage-error.ts';
import type { Behavior, Middleware, Next } from '../mediator/behavior.ts';
import type { ContextKey } from '../mediator/context-key.ts';
import { createContextKey } from '../mediator/context-key.ts';
import type { DispatchContext, HandlerDescriptor } from '../mediator/dispatch-context.ts';
import { Dispatch } from '../mediator/dispatch-context.ts';
import type { AnyEvent, AnyMessage } from '../messages/message.ts';
import type { OutboxStore } from '../outbox/outbox-store.ts';
import { outboxAppendChannel } from '../shared/tracing.ts';
import type { IdempotencyRecord, IdempotencyStore } from './idempotency.ts';
import {
  commandFingerprint,
  DEFAULT_MAX_RESULT_BYTES,
  decodeIdempotentResult,
  encodeIdempotentResult,
  IdempotencyConflictError,
  IdempotencyInFlightError,
  idempotencyId,
} from './idempotency.ts';

/** Opens the database transactions of a unit of work. Each storage package provides one. */
export interface TransactionRunner<TTx> {
  /** Runs `work` in one transaction: commits when it resolves, rolls back and rethrows when it rejects. */
  run<TResult>(work: (tx: TTx) => Promise<TResult>, options?: TransactionRunOptions): Promise<TResult>;
  /**
   * `true` when every transaction runs on one connection, one at a time (SQLite): a unit that must not join an
   * open one on it (see {@link outsideUnitOfWork}) would wait for that one forever, so it is refused.
   */
  readonly exclusive?: boolean;
}

/** What a unit of work tells its {@link TransactionRunner} about one transaction. */
export interface TransactionRunOptions {
  /**
   * The first statement `work` runs is the claim of an idempotency key by the unit's idempotency store. A runner
   * whose own store can open the transaction in the claim's round trip may leave `BEGIN` to that claim; any
   * other runner ignores this.
   */
  readonly claimFirst?: boolean;
}

const CLAIM_FIRST: TransactionRunOptions = Object.freeze({ claimFirst: true });

/**
 * Applies inline projections to a unit's events in its transaction, before the commit (from
 * `createInlineProjections`).
 */
export interface InlineProjector<TTx> {
  apply(tx: TTx, events: readonly AnyEvent[]): Promise<void>;
}

/** The options every storage package's unit of work takes (besides its client). */
export interface UnitOfWorkStoreOptions<TTx> {
  /** Where the events of each command are appended, in its transaction: an outbox store over the same database. */
  readonly outbox: Pick<OutboxStore<TTx>, 'append'>;
  /**
   * Keeps the results of commands that carry an idempotency key; `false` (or none) refuses such commands. The
   * storage packages default to a store in their inbox table.
   */
  readonly idempotency?: IdempotencyStore<TTx> | false;
  /** Largest serialized result kept for replay, in UTF-8 bytes. @default 1 MiB */
  readonly maxResultBytes?: number;
  /**
   * Reads a command's idempotency record before opening its transaction, so a replay needs no transaction, at
   * the price of one more round trip for every first send. Without it the key is claimed first thing in the
   * transaction and a replay is found by that claim (first sends are the common case). @default false
   */
  readonly readBeforeClaim?: boolean;
  /**
   * Inline projections: applied to the unit's events in its transaction, after they are appended and before
   * the commit, so a failing projection rolls the command back.
   */
  readonly projections?: InlineProjector<TTx>;
}

/** Options of {@link createUnitOfWork}. */
export interface UnitOfWorkOptions<TTx> extends UnitOfWorkStoreOptions<TTx> {
  /** Shown in pipelines and errors, e.g. `postgres unit of work`. */
  readonly name: string;
  readonly transactions: TransactionRunner<TTx>;
  /**
   * Classifies a failure of the transaction itself (connect, BEGIN, COMMIT), usually as a `StorageError`. Errors
   * of the command (its handler, the append, the idempotency store) never go through it. @default none: passed on
   */
  readonly toStorageError?: (error: unknown, what: string) => Error;
  /** Clock of idempotency records, epoch ms. @default Date.now */
  readonly now?: () => number;
  /**
   * What the transactions run on (the client, pool or connection). A command sent inside an open unit over the
   * same resource joins it, also when another unit-of-work behavior handles it. @default the behavior itself
   */
  readonly resource?: object;
}

/**
 * The transaction behavior: one database transaction per command. Add it to a mediator's `behaviors` like any
 * behavior, inside `retry()` and `timeout()`. It is also the typed handle of its transactions: a handler reaches
 * its transaction with `unitOfWork.transaction(ctx)` (or `ctx.get(unitOfWork.key)`).
 * @typeParam TTx - what handlers receive: a pg `PoolClient`, a postgres.js transaction `sql`, a Kysely
 *   `Transaction`, a mysql2 connection, a node:sqlite database...
 */
export interface UnitOfWork<TTx> extends Behavior {
  /** The typed context key of the handler's transaction; `undefined` outside a unit of this behavior. */
  readonly key: ContextKey<TTx | undefined>;
  /**
   * The transaction of the command being handled.
   * @throws ConfigurationError (`CQRS_CONFIGURATION`) when the handler does not run inside this unit of work.
   */
  transaction(context: DispatchContext): TTx;
}

/**
 * A unit of work in progress, as repositories see it: the transaction to write with, and where to report
 * events they wrote to the event log themselves.
 */
export interface ActiveUnitOfWork<TTx = unknown> {
  readonly transaction: TTx;
  /**
   * Events the caller already wrote to the outbox (the event log) in this transaction, e.g. an aggregate's
   * events appended with an expected version. They are not appended again, and are dispatched to in-process
   * event handlers after the commit, in order with the others.
   */
  appended(events: readonly AnyEvent[]): void;
}

interface Frame {
  /** `undefined` marks the edge of {@link outsideUnitOfWork}: units above it are not joined. */
  readonly unit: Unit | undefined;
  readonly parent: Frame | undefined;
}

const frames = new AsyncLocalStorage<Frame>();
const UNIT_KEY: ContextKey<Unit | undefined> = createContextKey<Unit | undefined>(undefined, {
  description: 'unit of work',
});
/** The `checkPipeline` functions of units of work, to find two units in one pipeline. */
const unitChecks = new WeakSet<object>();
/** Per resource (the client): how many dispatches of each idempotency id are running in this process. */
const runningKeys = new WeakMap<object, Map<string, number>>();

function runningOf(resource: object): Map<string, number> {
  let running = runningKeys.get(resource);
  if (running === undefined) {
    running = new Map();
    runningKeys.set(resource, running);
  }
  return running;
}

class Unit implements ActiveUnitOfWork {
  /** What the transaction runs on (the client): units of work over the same one join each other. */
  readonly resource: object;
  readonly transaction: unknown;
  readonly root: DispatchContext;
  /** Open to nested commands while the handler of the root command runs. */
  accepting = true;
  /** A joined command failed: the transaction must not commit. */
  failure: { readonly messageType: string; readonly error: unknown } | undefined;
  readonly events: AnyEvent[] = [];
  written: Set<AnyEvent> | undefined;
  running = 0;
  #idle: (() => void) | undefined;

  constructor(resource: object, transaction: unknown, root: DispatchContext) {
    this.resource = resource;
    this.transaction = transaction;
    this.root = root;
  }

  collect(events: readonly AnyEvent[] | undefined): void {
    if (events !== undefined) for (const e of events) this.events.push(e);
  }

  appended(events: readonly AnyEvent[]): void {
    if (!this.accepting) throw new ConfigurationError('appended(): the unit of work has already ended');
    this.written ??= new Set();
    for (const e of events) {
      if (e?.kind !== 'event') throw new ConfigurationError('appended() takes events');
      this.written.add(e);
      this.events.push(e);
    }
  }

  toAppend(): AnyEvent[] {
    const written = this.written;
    return written === undefined ? this.events : this.events.filter((e) => !written.has(e));
  }

  leave(): void {
    if (--this.running === 0) this.#idle?.();
  }

  idle(): Promise<void> {
    return this.running === 0 ? Promise.resolve() : new Promise((resolve) => (this.#idle = resolve));
  }
}

function joinable(resource: object): Unit | undefined {
  for (let f = frames.getStore(); f !== undefined && f.unit !== undefined; f = f.parent) {
    if (f.unit.resource === resource && f.unit.accepting) return f.unit;
  }
  return undefined;
}

function holds(resource: object): Unit | undefined {
  for (let f = frames.getStore(); f !== undefined; f = f.parent) {
    if (f.unit?.resource === resource && f.unit.accepting) return f.unit;
  }
  return undefined;
}

function takeEvents(context: DispatchContext): AnyEvent[] | undefined {
  if (!(context instanceof Dispatch)) {
    throw new ConfigurationError(
      "a unit of work needs the mediator's own dispatch context (next(message, context))",
    );
  }
  return context.takeEvents();
}

/**
 * Runs `fn` outside any unit of work: a command sent inside it does not join the unit of the command being
 * handled but opens its own, which commits (and dispatches its events) on its own, even when the outer one
 * later rolls back.
 *
 * @example
 * await outsideUnitOfWork(() => mediator.send(RecordAuditEntry.create({ what: 'refund refused' })));
 */
export function outsideUnitOfWork<TResult>(fn: () => TResult): TResult {
  if (typeof fn !== 'function') throw new ConfigurationError('outsideUnitOfWork() takes a function');
  return frames.run({ unit: undefined, parent: frames.getStore() }, fn);
}

/** The unit of work a handler runs in, from its context; `undefined` outside any. */
export function unitOfWorkOf(context: DispatchContext): ActiveUnitOfWork | undefined {
  if (typeof context?.get !== 'function')
    throw new ConfigurationError('unitOfWorkOf() takes a dispatch context');
  return context.get(UNIT_KEY);
}

/** The innermost unit of work open in the current async context (a handler's or a nested one's). */
export function currentUnitOfWork(): ActiveUnitOfWork | undefined {
  const f = frames.getStore();
  return f?.unit?.accepting ? f.unit : undefined;
}

const RETRY_CLAIM = 5;

/**
 * Builds the transaction behavior over a storage package's transactions, outbox and idempotency store. Storage
 * packages wrap it (`createPostgresUnitOfWork`, `createMysqlUnitOfWork`, `createSqliteUnitOfWork`); core's
 * {@link createInMemoryUnitOfWork} is the in-memory one.
 *
 * Per command: open a transaction, run the handler with it, append every event the handler recorded
 * (`ctx.emit`, `ctx.record`, aggregates it tracked, and those of nested commands that joined) to the outbox,
 * store the result under the command's idempotency key if it has one, commit; then the mediator dispatches the
 * events to in-process handlers. Any failure rolls everything back and nothing is dispatched.
 * @throws ConfigurationError when an option is missing or malformed
 */
export function createUnitOfWork<TTx>(options: UnitOfWorkOptions<TTx>): UnitOfWork<TTx> {
  const { name, transactions, outbox, toStorageError } = options;
  const idempotency = options.idempotency === false ? undefined : options.idempotency;
  if (typeof name !== 'string' || name.length === 0)
    throw new ConfigurationError('unit of work: name is required');
  if (typeof transactions?.run !== 'function')
    throw new ConfigurationError(`${name}: transactions must have run(work)`);
  if (typeof outbox?.append !== 'function')
    throw new ConfigurationError(
      `${name}: an outbox store is required (its events are appended in the transaction)`,
    );
  if (
    idempotency !== undefined &&
    !(
      typeof idempotency?.find === 'function' &&
      typeof idempotency.claim === 'function' &&
      typeof idempotency.complete === 'function'
    )
  ) {
    throw new ConfigurationError(`${name}: idempotency must be an idempotency store (find, claim, complete)`);
  }
  const projections = options.projections;
  if (projections !== undefined && typeof projections?.apply !== 'function')
    throw new ConfigurationError(`${name}: projections must come from createInlineProjections()`);
  if (toStorageError !== undefined && typeof toStorageError !== 'function')
    throw new ConfigurationError(`${name}: toStorageError must be a function`);
  const readBeforeClaim = options.readBeforeClaim ?? false;
  if (typeof readBeforeClaim !== 'boolean')
    throw new ConfigurationError(`${name}: readBeforeClaim must be true or false`);
  const maxResultBytes = options.maxResultBytes ?? DEFAULT_MAX_RESULT_BYTES;
  if (!(Number.isInteger(maxResultBytes) && maxResultBytes > 0))
    throw new ConfigurationError(`${name}: maxResultBytes must be a positive integer`);
  const now = options.now ?? Date.now;
  const key = createContextKey<TTx | undefined>(undefined, { description: `${name} transaction` });
  const exclusive = transactions.exclusive === true;
  const given = options.resource as unknown;
  if (given !== undefined && !((typeof given === 'object' && given !== null) || typeof given === 'function'))
    throw new ConfigurationError(`${name}: resource must be the client object`);
  // Without a resource, the behavior itself (assigned below): a unit is then joined by its own behavior only.
  let resource = given as object;

  interface Claim {
    readonly key: string;
    readonly id: string;
    readonly fingerprint: string;
  }

  const claimOf = (message: AnyMessage, context: DispatchContext): Claim | undefined => {
    const k = message.metadata.idempotencyKey;
    if (k === undefined) return undefined;
    if (idempotency === undefined) {
      throw new ConfigurationError(
        `${message.type} carries an idempotency key, but ${name} has no idempotency store`,
      );
    }
    const tenant = context.execution.tenantId ?? message.metadata.tenantId;
    return { key: k, id: idempotencyId(k, tenant), fingerprint: commandFingerprint(message) };
  };

  const replay = (
    message: AnyMessage,
    context: DispatchContext,
    claim: Claim,
    record: IdempotencyRecord,
  ): unknown => {
    if (record.fingerprint !== claim.fingerprint || record.result === null)
      throw new IdempotencyConflictError(message.type, claim.key);
    const result = decodeIdempotentResult(message.type, record.result);
    context.idempotency?.onReplay?.();
    return result;
  };

  /** Runs `work` counted as a dispatch of the claim's id; refuses a repeat that asked not to wait. */
  const counted = async <TResult>(
    message: AnyMessage,
    context: DispatchContext,
    claim: Claim,
    work: () => Promise<TResult>,
  ): Promise<TResult> => {
    const running = runningOf(resource);
    const count = running.get(claim.id) ?? 0;
    if (count > 0 && context.idempotency?.inFlight === 'reject')
      throw new IdempotencyInFlightError(message.type, claim.key);
    running.set(claim.id, count + 1);
    try {
      return await work();
    } finally {
      const left = running.get(claim.id)! - 1;
      if (left === 0) running.delete(claim.id);
      else running.set(claim.id, left);
    }
  };

  /** A command sent while a unit of this behavior is open in the same async context: it joins that unit. */
  const join = async (unit: Unit, message: AnyMessage, context: DispatchContext, next: Next) => {
    if (unit.failure !== undefined) throw rollbackOnly(unit);
    unit.running++;
    try {
      context.set(key, unit.transaction as TTx);
      context.set(UNIT_KEY, unit);
      const claim = claimOf(message, context);
      if (claim !== undefined)
        return await counted(message, context, claim, () => joined(unit, message, context, next, claim));
      return await joined(unit, message, context, next, undefined);
    } catch (error) {
      // Nothing of a refused key was written; any other failure may have left writes in the transaction.
      if (!(error instanceof IdempotencyConflictError || error instanceof IdempotencyInFlightError))
        unit.failure ??= { messageType: message.type, error };
      throw error;
    } finally {
      unit.leave();
    }
  };

  const joined = async (
    unit: Unit,
    message: AnyMessage,
    context: DispatchContext,
    next: Next,
    claim: Claim | undefined,
  ): Promise<unknown> => {
    if (claim !== undefined) {
      const found = await idempotency!.claim(unit.transaction as TTx, claim.id, claim.fingerprint, now());
      if (found !== undefined) return replay(message, context, claim, found);
    }
    const result = await next(message, context);
    // Keep the order: what the enclosing handler recorded so far, then what this command recorded.
    if (unit.root !== context) unit.collect(takeEvents(unit.root));
    unit.collect(takeEvents(context));
    if (claim !== undefined)
      await idempotency!.complete(
        unit.transaction as TTx,
        claim.id,
        encodeIdempotentResult(message.type, result, maxResultBytes),
      );
    return result;
  };

  const rollbackOnly = (unit: Unit) =>
    new ProcessingError(
      unit.failure!.messageType,
      unit.failure!.error,
      `${unit.failure!.messageType} failed inside the unit of work of ${unit.root.message.type}, which rolled back (send it inside outsideUnitOfWork() to let it fail on its own)`,
    );

  /** Runs `work` in a transaction; failures of the transaction itself go through `toStorageError`. */
  const runTransaction = async <TResult>(
    work: (tx: TTx) => Promise<TResult>,
    runOptions: TransactionRunOptions | undefined,
  ): Promise<TResult> => {
    if (toStorageError === undefined) return transactions.run(work, runOptions);
    let thrown: { error: unknown } | undefined;
    try {
      return await transactions.run(async (tx) => {
        try {
          return await work(tx);
        } catch (error) {
          thrown = { error };
          throw error;
        }
      }, runOptions);
    } catch (error) {
      if (thrown !== undefined && thrown.error === error) throw error;
      throw toStorageError(error, 'unit of work transaction');
    }
  };

  /** Opens the transaction, runs the pipeline inside it, appends and commits. */
  const begin = async (
    message: AnyMessage,
    context: DispatchContext,
    next: Next,
    claim: Claim | undefined,
  ) => {
    // The signal of the attempt (a timeout() outside restores its own signal when it fires).
    const signal = context.signal;
    let events: AnyEvent[] = [];
    const result = await runTransaction(
      async (tx) => {
        const unit = new Unit(resource, tx, context);
        context.set(key, tx);
        context.set(UNIT_KEY, unit);
        try {
          if (claim !== undefined) {
            const found = await idempotency!.claim(tx, claim.id, claim.fingerprint, now());
            if (found !== undefined) return { replayed: found };
          }
          let value: unknown;
          let thrown: { error: unknown } | undefined;
          try {
            value = await frames.run({ unit, parent: frames.getStore() }, next, message, context);
          } catch (error) {
            thrown = { error };
          }
          unit.accepting = false;
          if (unit.running > 0) {
            // A nested command still writing with this transaction: let it end before rolling back.
            await unit.idle();
            thrown ??= {
              error: new ConfigurationError(
                `${message.type}: a nested command was still running when the handler returned; await every send()`,
              ),
            };
          }
          if (thrown !== undefined) throw thrown.error;
          if (unit.failure !== undefined) throw rollbackOnly(unit);
          unit.collect(takeEvents(context));
          if (signal.aborted) throw signal.reason ?? new CancelledError(message.type);
          const pending = unit.toAppend();
          if (pending.length > 0) {
            if (outboxAppendChannel.hasSubscribers) {
              await outboxAppendChannel.tracePromise(() => outbox.append(tx, pending), {
                messageType: message.type,
                correlationId: message.metadata.correlationId,
                events: pending,
              });
            } else await outbox.append(tx, pending);
          }
          if (projections !== undefined && unit.events.length > 0) await projections.apply(tx, unit.events);
          if (claim !== undefined)
            await idempotency!.complete(
              tx,
              claim.id,
              encodeIdempotentResult(message.type, value, maxResultBytes),
            );
          events = unit.events;
          return { value };
        } finally {
          unit.accepting = false;
        }
      },
      claim === undefined ? undefined : CLAIM_FIRST,
    );
    if ('replayed' in result) return replay(message, context, claim!, result.replayed);
    // Committed: the mediator dispatches these to in-process handlers once the pipeline has returned.
    if (events.length > 0) context.record(...events);
    return result.value;
  };

  const run = async (message: AnyMessage, context: DispatchContext, next: Next) => {
    const claim = claimOf(message, context);
    if (claim === undefined) return attempts(message, context, next, undefined);
    if (!readBeforeClaim)
      return counted(message, context, claim, () => attempts(message, context, next, claim));
    return counted(message, context, claim, async () => {
      const found = await idempotency!.find(claim.id);
      // A record without a result is not finished: the claim below waits for its transaction.
      if (found !== undefined && found.result !== null) return replay(message, context, claim, found);
      return attempts(message, context, next, claim);
    });
  };

  const attempts = async (
    message: AnyMessage,
    context: DispatchContext,
    next: Next,
    claim: Claim | undefined,
  ): Promise<unknown> => {
    for (let attempt = 1; ; attempt++) {
      let started = false;
      try {
        return await begin(
          message,
          context,
          (m, c) => {
            started = true;
            return next(m, c);
          },
          claim,
        );
      } catch (error) {
        // A deadlock while claiming the key (before the handler ran) is retried: nothing ran yet.
        if (started || claim === undefined || attempt >= RETRY_CLAIM || !isRetryableStorage(error))
          throw error;
      }
    }
  };

  const middleware: Middleware = (message, context, next) => {
    const unit = joinable(resource);
    if (unit !== undefined) return join(unit, message, context, next);
    if (exclusive && holds(resource) !== undefined) {
      return Promise.reject(
        new ConfigurationError(
          `${message.type}: ${name} runs one transaction at a time on its connection, so a command sent inside outsideUnitOfWork() while another unit is open on it would wait forever`,
        ),
      );
    }
    return run(message, context, next);
  };

  const checkPipeline = (pipeline: readonly Behavior[], index: number, handler: HandlerDescriptor): void => {
    for (let i = 0; i < pipeline.length; i++) {
      const other = pipeline[i]!;
      if (i === index) continue;
      if (other.checkPipeline !== undefined && unitChecks.has(other.checkPipeline)) {
        throw new ConfigurationError(
          `${handler.messageType}: two units of work (${name}, ${other.name}) in one pipeline; keep one`,
        );
      }
      const kind = other.enforces?.find((p) => p === 'retry' || p === 'timeout');
      if (i > index && kind !== undefined) {
        throw new ConfigurationError(
          `${handler.messageType}: ${other.name === kind ? `${kind}()` : `${other.name} (${kind})`} is placed inside ${name}; list it before the unit of work, so each attempt gets a transaction of its own and a late handler is rolled back`,
        );
      }
    }
  };
  unitChecks.add(checkPipeline);

  const behavior: UnitOfWork<TTx> = Object.freeze({
    name,
    target: Object.freeze({ kinds: Object.freeze(['command'] as const) }),
    ...(idempotency !== undefined ? { enforces: Object.freeze(['idempotency'] as const) } : {}),
    key,
    checkPipeline,
    transaction(context: DispatchContext): TTx {
      if (typeof context?.get !== 'function')
        throw new ConfigurationError(`${name}: transaction() takes the handler's context`);
      const tx = context.get(key);
      if (tx === undefined) {
        throw new ConfigurationError(
          `${context.message.type} (${context.handler.name}) does not run inside ${name}: add it to the mediator's behaviors`,
        );
      }
      return tx;
    },
    forHandler(handler: HandlerDescriptor): Middleware {
      if (handler.kind !== 'command') {
        throw new ConfigurationError(
          `${name} wraps commands only; ${handler.messageType} is a ${handler.kind} (queries do not open write transactions, event handlers run after the commit)`,
        );
      }
      return middleware;
    },
  });
  if (given === undefined) resource = behavior;
  return behavior;
}

function isRetryableStorage(error: unknown): boolean {
  return error instanceof StorageError && error.retryable && error.reason !== 'connection';
}
