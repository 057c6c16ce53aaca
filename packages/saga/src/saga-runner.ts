import { type AnyEvent, ConfigurationError, type Mediator } from '@cqrs-ts/core';
import {
  type SagaListQuery,
  type SagaLogEntry,
  type SagaRecord,
  type SagaStatus,
  type SagaStore,
  uuidv7,
} from '@cqrs-ts/core/spi';
import { type CircuitBreaker, createCircuitBreaker } from './circuit-breaker.ts';
import type { AnySagaDefinition, AnyStepSpec, InferStepResult, SagaDefinition } from './define-saga.ts';
import { unwrapAttempt } from './saga-attempts.ts';
import { type CompensationFailure, SagaDefinitionError } from './saga-errors.ts';
import { ActiveRuns } from './saga-lease.ts';
import { recover } from './saga-recovery.ts';
import { execution, type Runtime, SagaRun } from './saga-run.ts';

/** Creates step class instances (a DI container adapter). Called once per step per run. */
export interface StepResolver {
  resolve<TInstance>(
    token: abstract new (...args: never[]) => TInstance,
    info: { readonly sagaId: string; readonly stepId: string },
  ): TInstance;
}

/** Where a failure reported to `onError` happened. */
export interface SagaErrorInfo {
  readonly sagaId: string;
  readonly phase: 'publish' | 'recover' | 'lease';
}

/** Options of {@link createSagaRunner}. */
export interface SagaRunnerOptions {
  /** Saga storage (in-memory from `@cqrs-ts/core`, or a SQL store). */
  readonly store: SagaStore;
  /** Definitions this runner can resume and recover. `start` also registers the saga it is given. */
  readonly sagas?: readonly AnySagaDefinition[];
  /** For `tools.send` and for publishing step events when there is no outbox. */
  readonly mediator?: Mediator;
  /**
   * `true`: stage step events in the store's outbox in the step's commit transaction (needs
   * `store.capabilities.outbox`). A function: called with the events after the step is recorded.
   * Default: publish through the mediator after the step is recorded.
   */
  readonly outbox?: true | ((events: readonly AnyEvent[]) => Promise<void>);
  /** Creates step class instances. Default: `new Step()`. */
  readonly resolver?: StepResolver;
  /** Circuit breaker for steps with `circuitBreaker: true`. Default: a per-runner in-memory breaker. */
  readonly breaker?: CircuitBreaker;
  /** Lease length; renewed every third of it while a step runs. @default 30_000 */
  readonly leaseMs?: number;
  /** This worker's lease owner id. @default a UUID v7 */
  readonly owner?: string;
  /** Clock, epoch ms. @default Date.now */
  readonly now?: () => number;
  /** Random source for backoff jitter. @default Math.random */
  readonly random?: () => number;
  /** Receives failures that do not fail a saga (publishing after a record, lease renewal). Must not throw. */
  readonly onError?: (error: unknown, info: SagaErrorInfo) => void;
}

/** A forward step finished (primary or fallback). */
export interface SagaActUpdate<TId extends string = string, TResult = unknown> {
  readonly sagaId: string;
  readonly action: 'act';
  /** Id of the step (the primary's id, also when its fallback ran). */
  readonly step: TId;
  /** Id of what ran: the step's or its fallback's. */
  readonly ran: string;
  readonly fallback: boolean;
  readonly slot: number;
  readonly attempts: number;
  readonly result: TResult;
}

/** A compensation finished (after its retries). */
export interface SagaCompensateUpdate {
  readonly sagaId: string;
  readonly action: 'compensate';
  readonly step: string;
  readonly ran: string;
  readonly slot: number;
  readonly attempts: number;
  readonly status: 'completed' | 'failed';
  readonly error: unknown;
}

type ActUpdates<TSteps extends readonly AnyStepSpec[]> = {
  [K in keyof TSteps]: SagaActUpdate<TSteps[K]['id'], InferStepResult<TSteps[K]>>;
}[number];

/** What the step stream yields for a saga. */
export type SagaUpdate<TSteps extends readonly AnyStepSpec[] = readonly AnyStepSpec[]> =
  | ActUpdates<TSteps>
  | SagaCompensateUpdate;

/** Results recorded so far, by step id. */
export type SagaResults<TSteps extends readonly AnyStepSpec[]> = {
  readonly [S in TSteps[number] as S['id']]?: InferStepResult<S>;
};

/** The final state of a saga run. */
export interface SagaOutcome<TCtx = unknown, TSteps extends readonly AnyStepSpec[] = readonly AnyStepSpec[]> {
  readonly sagaId: string;
  readonly name: string;
  readonly status: SagaStatus;
  readonly context: TCtx;
  /** Results of completed forward steps, by step id (the primary's id when a fallback ran). */
  readonly results: SagaResults<TSteps>;
  /** The forward error (for a saga that compensated), else `undefined`. */
  readonly error: unknown;
  readonly compensationFailures: readonly CompensationFailure[];
}

/**
 * One saga run. Iterate it (`for await`) to drive the saga step by step and receive each result as it is
 * recorded; the saga only advances while you read. **Stopping early (break, return) pauses the saga**: it is
 * stored as `paused` (or left `compensating` for recovery if it was compensating), keeps its lease-free state,
 * and continues with `runner.resume(id)`. Use {@link SagaExecution.abort} to roll it back instead.
 * When the saga did not complete, iteration ends by throwing a {@link SagaFailedError}.
 */
export interface SagaExecution<TCtx = unknown, TSteps extends readonly AnyStepSpec[] = readonly AnyStepSpec[]>
  extends AsyncIterable<SagaUpdate<TSteps>> {
  readonly sagaId: string;
  /** Drives the saga to its end. Resolves the outcome when completed; rejects with SagaFailedError otherwise. */
  done(): Promise<SagaOutcome<TCtx, TSteps>>;
  /**
   * Aborts: a running step's signal aborts, no further forward step starts, and completed steps are
   * compensated. Resolves the final outcome (status `compensated` or `compensation_failed`), or `completed` if
   * the saga had already completed.
   */
  abort(reason?: unknown): Promise<SagaOutcome<TCtx, TSteps>>;
}

/** Options of {@link SagaRunner.recover}. */
export interface RecoverOptions {
  /** Most sagas taken in this pass. @default 100 */
  readonly limit?: number;
  /** Only sagas not updated for this long. @default 0 (an expired or released lease is enough) */
  readonly staleAfterMs?: number;
  /** Only these saga names. @default the names registered with the runner */
  readonly names?: readonly string[];
  /** Skip sagas taken this many times already. */
  readonly maxAttempts?: number;
  /** Sagas resumed at once. @default 1 */
  readonly concurrency?: number;
}

/** What a recovery pass did. */
export interface RecoveryReport {
  readonly found: number;
  readonly completed: number;
  readonly compensated: number;
  readonly compensationFailed: number;
  /** Taken by another worker meanwhile. */
  readonly skipped: number;
  /** Sagas that could not be resumed (unknown name, corrupted state, storage errors). */
  readonly errors: readonly { readonly sagaId: string; readonly error: unknown }[];
}

/** Runs, resumes and recovers sagas over a {@link SagaStore}. */
export interface SagaRunner {
  /** This worker's lease owner id. */
  readonly owner: string;
  /** Starts a saga (nothing is stored until the stream is read or `done()`/`abort()` is called). */
  start<TCtx, TSteps extends readonly AnyStepSpec<TCtx>[]>(
    saga: SagaDefinition<TCtx, TSteps>,
    context: TCtx,
    options?: { readonly id?: string },
  ): SagaExecution<TCtx, TSteps>;
  /** `start(...).done()`: runs to the end; rejects with SagaFailedError when the saga did not complete. */
  run<TCtx, TSteps extends readonly AnyStepSpec<TCtx>[]>(
    saga: SagaDefinition<TCtx, TSteps>,
    context: TCtx,
    options?: { readonly id?: string },
  ): Promise<SagaOutcome<TCtx, TSteps>>;
  /**
   * Continues a stored saga: `paused` and `running` go forward, `compensating` and `compensation_failed`
   * continue compensating (skipping compensated steps), terminal ones resolve their outcome at once.
   * Errors (not found, unknown name, lease held, corrupted) surface when the execution is driven.
   */
  resume(sagaId: string): SagaExecution;
  /** Finds interrupted sagas and runs each to its end (see {@link RecoverOptions}). */
  recover(options?: RecoverOptions): Promise<RecoveryReport>;
  /** Stored sagas for operators, e.g. `list({ statuses: ['compensation_failed'], limit: 50 })`. */
  list(query: SagaListQuery): Promise<readonly SagaRecord[]>;
  /** The log of a saga, by sequence. */
  history(sagaId: string): Promise<readonly SagaLogEntry[]>;
}

function unwrapError<T>(fn: () => Promise<T>): Promise<T> {
  return fn().catch((error: unknown) => {
    throw unwrapAttempt(error);
  });
}

/**
 * Creates a saga runner. Semantics in short:
 * - Steps run in order; each finished step is recorded (context, result, log row, events) in one store commit
 *   before the next starts. A step recorded as completed never runs again.
 * - A step that fails after its retries (and its fallback) makes the saga compensate: completed steps are
 *   compensated in reverse order, each retried with backoff; a compensation that keeps failing is logged and the
 *   others still run; the saga ends `compensated` or `compensation_failed`. Once compensating, never forward.
 * - **At-least-once window**: a crash after a step's effect but before its record re-runs the step on recovery
 *   (and likewise for compensations). Make steps idempotent with `tools.idempotencyKey()`.
 * - One worker at a time per saga: a lease (`leaseMs`, renewed while a step runs) fences other workers.
 */
export function createSagaRunner(options: SagaRunnerOptions): SagaRunner {
  const store = options.store;
  if (typeof store?.commit !== 'function')
    throw new ConfigurationError('createSagaRunner needs a saga store');
  if (options.outbox === true && !store.capabilities.outbox) {
    throw new ConfigurationError('outbox: true needs a saga store created with an outbox');
  }
  const leaseMs = options.leaseMs ?? 30_000;
  if (!(leaseMs >= 10)) throw new ConfigurationError('leaseMs must be at least 10');
  const registry = new Map<string, AnySagaDefinition>();
  const register = (def: AnySagaDefinition) => {
    if (def?.kind !== 'saga') throw new ConfigurationError('not a saga definition (use defineSaga)');
    const known = registry.get(def.name);
    if (known !== undefined && known !== def) {
      throw new SagaDefinitionError(
        def.name,
        'another definition with this name is registered with the runner',
      );
    }
    registry.set(def.name, def);
  };
  for (const def of options.sagas ?? []) register(def);
  const rt: Runtime = {
    store,
    registry,
    mediator: options.mediator,
    outbox: options.outbox,
    resolver: options.resolver ?? {
      resolve: (token) => new (token as unknown as new () => never)(),
    },
    breaker: options.breaker ?? createCircuitBreaker(),
    leaseMs,
    active: new ActiveRuns(leaseMs),
    owner: options.owner ?? uuidv7(),
    now: options.now ?? Date.now,
    random: options.random ?? Math.random,
    onError:
      options.onError ??
      ((error, info) => process.emitWarning(`saga ${info.sagaId} (${info.phase}): ${String(error)}`)),
  };

  const start = (saga: AnySagaDefinition, context: unknown, opts?: { readonly id?: string }) => {
    register(saga);
    return execution(new SagaRun(rt, opts?.id ?? uuidv7(), saga, { context }));
  };

  const runner: SagaRunner = {
    owner: rt.owner,
    start: start as SagaRunner['start'],
    run: ((saga: AnySagaDefinition, context: unknown, opts?: { readonly id?: string }) =>
      unwrapError(() => start(saga, context, opts).done())) as SagaRunner['run'],
    resume(sagaId) {
      return execution(new SagaRun(rt, sagaId, undefined));
    },
    recover: (opts) => recover(rt, opts),
    list: (query) => store.list(query),
    history: (sagaId) => store.history(sagaId),
  };
  return runner;
}
