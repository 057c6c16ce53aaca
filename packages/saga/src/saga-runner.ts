import {
  type AnyEvent,
  type BackoffOptions,
  ConfigurationError,
  type Heartbeat,
  type Mediator,
} from '@cqrs-ts/core';
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
import { resolveCompensationPolicy } from './saga-compensation.ts';
import { type CompensationFailure, SagaDefinitionError } from './saga-errors.ts';
import { ActiveRuns } from './saga-lease.ts';
import { health, recover, startRecovery } from './saga-recovery.ts';
import { execution, type Runtime, SagaRun } from './saga-run.ts';
import { SagaChanges, type SagaProgress, type SagaWatchOptions, watchSaga } from './saga-watch.ts';

/**
 * Creates step class instances (a DI container adapter). Called once per step per run; the instance it gives
 * acts and, if the saga fails later, compensates. Containers that build asynchronously (NestJS) return a promise.
 */
export interface StepResolver {
  resolve<TInstance>(
    token: abstract new (...args: never[]) => TInstance,
    info: { readonly sagaId: string; readonly stepId: string },
  ): TInstance | Promise<TInstance>;
}

/** Where a failure reported to `onError` happened. */
export interface SagaErrorInfo {
  readonly sagaId: string;
  readonly phase: 'publish' | 'recover' | 'lease';
}

/**
 * How compensations keep trying through an outage. A pass (the run in which the saga fails, or a later recovery
 * pass) retries a failing compensation with backoff for up to `retryForMs`; the saga is then stored
 * `compensation_failed` with a retry time `coolDownMs` ahead, and recovery takes it again from then on, pass
 * after pass, until `budgetMs` from its first compensation attempt is spent. Only then, or after an error its
 * `retryOn` does not retry, does it wait for an operator (see {@link SagaRunner.health}).
 */
export interface CompensationPolicy {
  /**
   * Delay between attempts within a pass; a step's `compensationRetry.backoff` overrides fields of it.
   * @default { initialMs: 1_000, factor: 2, maxMs: 30_000, jitter: 'full' }
   */
  readonly backoff?: BackoffOptions;
  /** How long one pass keeps retrying a failing compensation, in ms. @default 10_000 */
  readonly retryForMs?: number;
  /** How long recovery waits before taking a `compensation_failed` saga again, in ms. @default 30_000 */
  readonly coolDownMs?: number;
  /**
   * Total time during which a saga's compensations are retried, from its first compensation attempt, in ms;
   * `Infinity` retries without end. @default 86_400_000 (24 h)
   */
  readonly budgetMs?: number;
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
  /**
   * Lease length, in ms. While a step or compensation runs its lease is renewed once a third of it has passed;
   * when a renewal is refused (another worker took the saga) or not confirmed before the last sixth of the lease,
   * the step's signal aborts and the run stops without committing. @default 30_000
   */
  readonly leaseMs?: number;
  /** How failing compensations are retried (see {@link CompensationPolicy}). */
  readonly compensation?: CompensationPolicy;
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
  /** Of `compensationFailed`: sagas no longer retried (budget spent, or an error that is not retried). */
  readonly needsOperator: number;
  /** Taken or changed by another worker since they were listed (each saga is counted by one worker only). */
  readonly skipped: number;
  /** Sagas that could not be resumed (unknown name, corrupted state, storage errors). */
  readonly errors: readonly { readonly sagaId: string; readonly error: unknown }[];
}

/** Options of {@link SagaRunner.startRecovery}: those of a pass, and the time between passes. */
export interface RecoveryAgentOptions extends RecoverOptions {
  /** Wait between passes (cut short when a pass hit `limit`), in ms. @default 5000 */
  readonly intervalMs?: number;
}

/**
 * Recovery running in the background: a pass every `intervalMs`. Its heartbeat (a beat per pass) shows a
 * recovery that stopped running, e.g. with `loopHealth('saga-recovery', agent)` of `@cqrs-ts/core`.
 */
export interface SagaRecoveryAgent extends AsyncDisposable {
  /** A beat per finished pass, with the time the next pass is due (`intervalMs`). */
  heartbeat(): Heartbeat;
  /** The last pass's report, `undefined` before the first. */
  readonly lastReport: RecoveryReport | undefined;
  /** The last pass that failed (e.g. the store was down), as text; kept after recovery. */
  readonly lastError: string | undefined;
  /** Stops after the pass in flight. */
  stop(): Promise<void>;
}

/** What {@link SagaRunner.health} reports. */
export interface SagaHealth {
  /** `compensation_failed` sagas recovery no longer retries: their budget is spent or their error is not retried. */
  readonly needsOperator: number;
  /** `compensation_failed` sagas recovery takes again (after their cool-down, or after a retrying worker died). */
  readonly retrying: number;
  /** Sagas with a unit of work (a step, a compensation, a commit) running in this runner now. */
  readonly active: number;
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
  /** Runs {@link SagaRunner.recover} in the background, a pass every `intervalMs`, until stopped. */
  startRecovery(options?: RecoveryAgentOptions): SagaRecoveryAgent;
  /**
   * How many `compensation_failed` sagas need an operator and how many recovery still retries (of the runner's
   * registered saga names, or `names`). Reads every `compensation_failed` row of those names.
   * @throws ConfigurationError (`CQRS_CONFIGURATION`) when `names` is not an array of strings.
   */
  health(options?: { readonly names?: readonly string[] }): Promise<SagaHealth>;
  /** Stored sagas for operators, e.g. `list({ statuses: ['compensation_failed'], limit: 50 })`. */
  list(query: SagaListQuery): Promise<readonly SagaRecord[]>;
  /** The log of a saga, by sequence. */
  history(sagaId: string): Promise<readonly SagaLogEntry[]>;
  /**
   * The progress feed of one saga: its log rows after `after` (`kind: 'step'`), then its row (`kind: 'state'`)
   * each time it changed, until it is `completed`, `compensated` or `failed`, or `signal` aborts. Commits of this
   * runner wake the feed at once (no polling); for sagas other processes drive, set `recheckMs`. Nothing is
   * buffered while the consumer does not read: it reads the store again when it pulls.
   * @throws SagaNotFoundError (on iteration) for an unknown saga id; ConfigurationError for a bad `after` or
   *   `recheckMs`.
   */
  watch(sagaId: string, options?: SagaWatchOptions): AsyncIterable<SagaProgress>;
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
 *   others still run; the saga ends `compensated` or `compensation_failed`, which recovery retries after a
 *   cool-down until its budget is spent (see {@link CompensationPolicy}). Once compensating, never forward.
 * - **At-least-once window**: a crash after a step's effect but before its record re-runs the step on recovery
 *   (and likewise for compensations). Make steps idempotent with `tools.idempotencyKey()`.
 * - One worker at a time per saga: a lease (`leaseMs`, renewed while a step runs) fences other workers; the
 *   saga's version is the fencing token every commit presents, so a worker that lost its lease cannot commit.
 * @throws ConfigurationError (`CQRS_CONFIGURATION`) for a missing store, `outbox: true` on a store without
 *   one, a `leaseMs` under 10 or a `compensation` policy that is not finite, positive integers.
 */
export function createSagaRunner(options: SagaRunnerOptions): SagaRunner {
  const store = options.store;
  if (typeof store?.commit !== 'function')
    throw new ConfigurationError('createSagaRunner needs a saga store');
  if (options.outbox === true && !store.capabilities.outbox) {
    throw new ConfigurationError('outbox: true needs a saga store created with an outbox');
  }
  const changes = new SagaChanges();
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
    store: changes.wrap(store),
    registry,
    mediator: options.mediator,
    outbox: options.outbox,
    resolver: options.resolver ?? {
      resolve: (token) => new (token as unknown as new () => never)(),
    },
    breaker: options.breaker ?? createCircuitBreaker(),
    leaseMs,
    active: new ActiveRuns(leaseMs),
    inProgress: new Map(),
    compensation: resolveCompensationPolicy(options.compensation),
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
    startRecovery: (opts) => startRecovery(rt, opts),
    health: (opts) => health(rt, opts?.names ?? [...registry.keys()]),
    list: (query) => store.list(query),
    history: (sagaId) => store.history(sagaId),
    watch: (sagaId, opts) => watchSaga(store, changes, sagaId, opts),
  };
  return runner;
}
