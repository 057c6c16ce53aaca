/**
 * The state machine of one saga instance and the execution handed to callers. Each `advance()` does one unit of
 * work (setup, then a forward step or a compensation); the sections live in their own files: setup
 * (`saga-setup.ts`), forward (`saga-forward.ts`), compensation (`saga-compensation.ts`), the attempt loop they
 * share (`saga-attempts.ts`), leases (`saga-lease.ts`) and storage (`saga-storage.ts`). @internal
 * @module
 */
import type { AnyEvent, Mediator } from '@cqrs-ts/core';
import type { SagaStatus, SagaStore } from '@cqrs-ts/core/spi';
import type { CircuitBreaker } from './circuit-breaker.ts';
import type { AnySagaDefinition } from './define-saga.ts';
import { compensateNext, type ResolvedCompensationPolicy } from './saga-compensation.ts';
import {
  type CompensationFailure,
  SagaAbortedError,
  SagaFailedError,
  SagaLeaseError,
  SagaStateError,
} from './saga-errors.ts';
import { forward } from './saga-forward.ts';
import type { ActiveRuns } from './saga-lease.ts';
import type { CompletedStep } from './saga-replay.ts';
import type {
  SagaErrorInfo,
  SagaExecution,
  SagaOutcome,
  SagaRunnerOptions,
  SagaUpdate,
  StepResolver,
} from './saga-runner.ts';
import { initRun } from './saga-setup.ts';

/** What every run of one runner shares. */
export interface Runtime {
  readonly store: SagaStore;
  readonly registry: Map<string, AnySagaDefinition>;
  readonly mediator: Mediator | undefined;
  readonly outbox: SagaRunnerOptions['outbox'];
  readonly resolver: StepResolver;
  readonly breaker: CircuitBreaker;
  readonly leaseMs: number;
  readonly owner: string;
  readonly now: () => number;
  readonly random: () => number;
  readonly onError: (error: unknown, info: SagaErrorInfo) => void;
  /** Runs with a step executing; one unref'd runner-wide timer keeps their leases. */
  readonly active: ActiveRuns;
  /** The run doing a unit of work on a saga, by saga id: one at a time per saga in this runner. */
  readonly inProgress: Map<string, SagaRun>;
  readonly compensation: ResolvedCompensationPolicy;
}

/**
 * One saga instance being driven by this worker. Its fields are the run's state, shared by the section files;
 * nothing outside this package sees the class.
 */
export class SagaRun {
  readonly id: string;
  readonly rt: Runtime;
  def: AnySagaDefinition | undefined;
  /** The context of a new saga, until it is created. */
  initial: { context: unknown } | undefined;
  initialized = false;
  ctx: unknown;
  ctxJson = '';
  version = 0;
  status: SagaStatus = 'running';
  cursor = 0;
  deadlineAt: number | null = null;
  errorJson: string | null = null;
  forwardError: unknown;
  failedStep: string | undefined;
  completed: (CompletedStep | undefined)[] = [];
  compensated = new Set<number>();
  /** Slots whose compensation failed in this pass (skipped until the next resume). */
  readonly compFailedNow = new Set<number>();
  readonly compensationFailures: CompensationFailure[] = [];
  /** Step class instances by step id (one per step per run). */
  readonly instances = new Map<string, unknown>();
  /** Aborted by `abort()`, the deadline or a lost lease: the signal of forward steps. */
  readonly controller = new AbortController();
  /** Aborted only by a lost lease: the signal compensations run under. */
  readonly leaseController = new AbortController();
  abortRequested: unknown;
  /** When the lease this run holds ends, as far as the store confirmed it (epoch ms); 0 when none is held. */
  leaseUntil = 0;
  /** Set once the lease is lost or could not be renewed in time: the run stops and commits nothing more. */
  leaseLost: SagaLeaseError | undefined;
  /** The renewal in flight, if any (never overlaps a commit of this run). */
  renewing: Promise<void> | undefined;
  /** Recovery: the version the saga was listed at; it is taken only while unchanged. */
  expectedVersion: number | undefined;
  /** Start of the first compensation attempt (epoch ms): the compensation budget runs from it. */
  compensatingSince: number | undefined;
  /** When recovery takes the saga again, once it ended a pass `compensation_failed` with budget left. */
  retryAt: number | undefined;
  /** A compensation failed with an error its `retryOn` does not retry: no retry time is set. */
  compensationGaveUp = false;
  /** The run is compensating (a rollback, for recovery reports). */
  aborting = false;
  outcome: SagaOutcome | undefined;
  failure: unknown;
  /** Stopped (paused or lost its lease): `advance()` does nothing more. */
  closed = false;
  #queue: Promise<unknown> = Promise.resolve();
  #pending = 0;

  constructor(rt: Runtime, id: string, def: AnySagaDefinition | undefined, initial?: { context: unknown }) {
    this.rt = rt;
    this.id = id;
    this.def = def;
    this.initial = initial;
  }

  get finished(): boolean {
    return this.outcome !== undefined || this.failure !== undefined;
  }

  /** Serializes units of work (iteration, done, abort and pause share one queue). */
  enqueue<T>(work: () => Promise<T>): Promise<T> {
    if (this.#pending === 0) {
      // Idle: run at once, no chaining.
      this.#pending++;
      const next = work();
      this.#queue = next.then(this.#settled, this.#settled);
      return next;
    }
    this.#pending++;
    const next = this.#queue.then(work, work);
    this.#queue = next.then(this.#settled, this.#settled);
    return next;
  }

  readonly #settled = (): void => {
    this.#pending--;
  };

  requestAbort(reason: unknown): void {
    if (this.abortRequested !== undefined || this.finished) return;
    this.abortRequested = new SagaAbortedError(this.id, reason);
    this.controller.abort(this.abortRequested);
  }

  /** Final result once finished: resolves the outcome or throws the failure. */
  settle(): SagaOutcome {
    if (this.failure !== undefined) throw this.failure;
    if (this.outcome !== undefined) return this.outcome;
    throw new SagaStateError(
      this.id,
      this.status,
      'this run stopped (paused or lost its lease): use runner.resume(id)',
    );
  }

  outcomeOrFailure(): SagaOutcome {
    if (this.outcome !== undefined) return this.outcome;
    if (this.failure instanceof SagaFailedError) return this.makeOutcome();
    return this.settle();
  }

  /** One unit of work; `undefined` when finished. Throws setup errors (context, lease, corrupted). */
  async advance(): Promise<SagaUpdate | undefined> {
    if (this.finished || this.closed) return undefined;
    const busy = this.rt.inProgress;
    const other = busy.get(this.id);
    if (other !== undefined && other !== this) {
      throw new SagaLeaseError(this.id, 'another run of this saga is active in this worker');
    }
    busy.set(this.id, this);
    try {
      if (!this.initialized) {
        await initRun(this);
        if (this.finished) return undefined;
      }
      if (this.status === 'running') return await forward(this);
      return await compensateNext(this);
    } finally {
      busy.delete(this.id);
    }
  }

  /** The lease is gone (refused or not confirmed in time): abort what runs and stop. */
  loseLease(error: SagaLeaseError): void {
    if (this.leaseLost !== undefined) return;
    this.leaseLost = error;
    this.closed = true;
    this.controller.abort(error);
    this.leaseController.abort(error);
  }

  /** The consumer stopped reading: keep the saga resumable. */
  async pause(): Promise<void> {
    if (this.finished || !this.initialized || this.closed) return;
    this.closed = true;
    const rt = this.rt;
    if (this.status === 'running') {
      this.version = await rt.store.commit({
        id: this.id,
        owner: rt.owner,
        expectedVersion: this.version,
        now: rt.now(),
        status: 'paused',
        context: this.ctxJson,
        cursor: this.cursor,
        error: this.errorJson,
        log: [],
        lease: 'release',
      });
      this.status = 'paused';
    } else {
      await rt.store.release({ id: this.id, owner: rt.owner, expectedVersion: this.version });
    }
  }

  makeOutcome(): SagaOutcome {
    const results: Record<string, unknown> = {};
    const def = this.def!;
    this.completed.forEach((c, slot) => {
      if (c !== undefined) results[def.steps[slot]!.id] = c.result;
    });
    return Object.freeze({
      sagaId: this.id,
      name: def.name,
      status: this.status,
      context: this.ctx,
      results: Object.freeze(results),
      error: this.forwardError,
      compensationFailures: Object.freeze([...this.compensationFailures]),
    });
  }

  makeFailure(): SagaFailedError {
    return new SagaFailedError({
      sagaId: this.id,
      sagaName: this.def!.name,
      status: this.status,
      stepId: this.failedStep,
      cause: this.forwardError,
      compensationFailures: this.compensationFailures,
      context: this.ctx,
      retryAt: this.status === 'compensation_failed' ? this.retryAt : undefined,
    });
  }
}

/** The caller's handle on a run: drives it through its queue. */
export function execution(run: SagaRun): SagaExecution {
  let iterating = false;
  const drain = async (): Promise<void> => {
    while ((await run.enqueue(() => run.advance())) !== undefined) {
      /* drive */
    }
  };
  return {
    sagaId: run.id,
    async done() {
      await drain();
      return run.settle();
    },
    async abort(reason) {
      run.requestAbort(reason);
      await drain();
      return run.outcomeOrFailure();
    },
    [Symbol.asyncIterator]() {
      if (iterating) throw new SagaStateError(run.id, 'running', 'the step stream can be read once');
      iterating = true;
      const iterator: AsyncIterator<SagaUpdate> = {
        async next() {
          const update = await run.enqueue(() => run.advance());
          if (update !== undefined) return { value: update, done: false };
          run.settle();
          return { value: undefined, done: true };
        },
        async return() {
          await run.enqueue(() => run.pause());
          return { value: undefined, done: true };
        },
      };
      return iterator;
    },
  };
}

/** Step events a class instance hands out (e.g. an `AggregateRoot`). */
export type EventSourceLike = { pullEvents?: () => readonly AnyEvent[] };
