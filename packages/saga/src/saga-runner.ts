import {
  type AnyCommand,
  type AnyEvent,
  backoffDelay,
  ConfigurationError,
  type InferResult,
  isCqrsError,
  isRetryable,
  type Mediator,
  type SagaListQuery,
  type SagaLogEntry,
  type SagaLogEntryInput,
  type SagaRecord,
  type SagaStatus,
  type SagaStore,
  TimeoutError,
  uuidv7,
} from '@cqrs-ts/core';
import { type CircuitBreaker, createCircuitBreaker } from './circuit-breaker.ts';
import {
  type AnySagaDefinition,
  type AnyStepSpec,
  type InferStepResult,
  type NormalizedStep,
  type SagaDefinition,
  type StepRetryOptions,
  type StepTools,
  toJson,
} from './define-saga.ts';
import {
  CircuitOpenError,
  type CompensationFailure,
  SagaAbortedError,
  SagaContextError,
  SagaCorruptedError,
  SagaDeadlineError,
  SagaDefinitionError,
  SagaError,
  SagaFailedError,
  SagaLeaseError,
  SagaNotFoundError,
  SagaStateError,
  UnknownSagaError,
} from './saga-errors.ts';

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

const NOT_RETRIED = (error: unknown) =>
  !(
    error instanceof CircuitOpenError ||
    error instanceof SagaAbortedError ||
    error instanceof SagaDeadlineError ||
    error instanceof SagaLeaseError
  );
const defaultRetryOn = (error: unknown) => isRetryable(error) && NOT_RETRIED(error);
const defaultFallbackOn = (error: unknown) =>
  !(
    error instanceof SagaAbortedError ||
    error instanceof SagaDeadlineError ||
    error instanceof SagaLeaseError
  );
const ACT_BACKOFF = { initialMs: 100, factor: 2, maxMs: 10_000 } as const;
const COMPENSATE_BACKOFF = { initialMs: 1000, factor: 2, maxMs: 30_000 } as const;

/** JSON text of an error for storage (name, code, message; no stack). */
function errorJson(error: unknown): string {
  if (error instanceof Error) {
    const out: Record<string, unknown> = { name: error.name, message: error.message.slice(0, 2000) };
    if (isCqrsError(error)) out.code = error.code;
    if (error instanceof SagaError) out.reason = error.reason;
    return JSON.stringify(out);
  }
  return JSON.stringify({ name: 'Error', message: String(error).slice(0, 2000) });
}

/** An error read back from storage. */
class StoredError extends Error {
  readonly code: string | undefined;
  constructor(json: string | null) {
    let parsed: { name?: unknown; message?: unknown; code?: unknown } = {};
    try {
      parsed = json === null ? {} : (JSON.parse(json) as typeof parsed);
    } catch {
      parsed = { message: json ?? '' };
    }
    super(typeof parsed.message === 'string' ? parsed.message : 'unknown error');
    this.name = typeof parsed.name === 'string' ? parsed.name : 'Error';
    this.code = typeof parsed.code === 'string' ? parsed.code : undefined;
  }
}

function waitFor(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal!.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

function isThenable<T>(value: T | PromiseLike<T>): value is PromiseLike<T> {
  return value !== null &&
    typeof value === 'object' &&
    typeof (value as { then?: unknown }).then === 'function'
    ? true
    : typeof value === 'function' && typeof (value as { then?: unknown }).then === 'function';
}

/** Rejects with the signal's reason when it aborts first (the step may ignore its signal). */
function race<T>(work: PromiseLike<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    work.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (e) => {
        signal.removeEventListener('abort', onAbort);
        reject(e);
      },
    );
  });
}

interface Completed {
  readonly step: NormalizedStep;
  readonly result: unknown;
}

type EventSourceLike = { pullEvents?: () => readonly AnyEvent[] };

interface Runtime {
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
  /** Runs with a step executing; one unref'd runner-wide timer renews their leases every third of `leaseMs`. */
  readonly active: ActiveRuns;
}

/** A set of runs whose leases one timer renews; the timer runs only while the set is non-empty for a while. */
class ActiveRuns {
  readonly #runs = new Set<SagaRun>();
  readonly #every: number;
  #timer: ReturnType<typeof setInterval> | undefined;
  #idleTicks = 0;
  constructor(leaseMs: number) {
    this.#every = Math.max(5, Math.floor(leaseMs / 3));
  }
  add(run: SagaRun): void {
    this.#runs.add(run);
    if (this.#timer === undefined) {
      this.#timer = setInterval(() => this.#tick(), this.#every);
      this.#timer.unref();
    }
  }
  delete(run: SagaRun): void {
    this.#runs.delete(run);
  }
  #tick(): void {
    if (this.#runs.size === 0) {
      // Stop after a few idle periods; the next step starts it again.
      if (++this.#idleTicks > 3) {
        clearInterval(this.#timer);
        this.#timer = undefined;
        this.#idleTicks = 0;
      }
      return;
    }
    this.#idleTicks = 0;
    for (const run of this.#runs) run.renewLease();
  }
}

const NEVER = new AbortController().signal;

/** @internal The state machine of one saga instance. Each `advance()` does one unit: a step or a compensation. */
class SagaRun {
  readonly id: string;
  readonly #rt: Runtime;
  #def: AnySagaDefinition | undefined;
  #initial: { context: unknown } | undefined;
  #initialized = false;
  #ctx: unknown;
  #ctxJson = '';
  #version = 0;
  #status: SagaStatus = 'running';
  #cursor = 0;
  #deadlineAt: number | null = null;
  #errorJson: string | null = null;
  #forwardError: unknown;
  #failedStep: string | undefined;
  readonly #completed: (Completed | undefined)[] = [];
  readonly #compensated = new Set<number>();
  /** Slots whose compensation failed in this pass (skipped until the next resume). */
  readonly #compFailedNow = new Set<number>();
  readonly #compensationFailures: CompensationFailure[] = [];
  readonly #instances = new Map<string, unknown>();
  readonly #controller = new AbortController();
  #abortRequested: unknown;
  #aborting = false;
  #outcome: SagaOutcome | undefined;
  #failure: unknown;
  #closed = false;
  #queue: Promise<unknown> = Promise.resolve();
  #pending = 0;

  constructor(rt: Runtime, id: string, def: AnySagaDefinition | undefined, initial?: { context: unknown }) {
    this.#rt = rt;
    this.id = id;
    this.#def = def;
    this.#initial = initial;
  }

  get finished(): boolean {
    return this.#outcome !== undefined || this.#failure !== undefined;
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
    if (this.#abortRequested !== undefined || this.finished) return;
    this.#abortRequested = new SagaAbortedError(this.id, reason);
    this.#controller.abort(this.#abortRequested);
  }

  /** Final result once finished: resolves the outcome or throws the failure. */
  settle(): SagaOutcome {
    if (this.#failure !== undefined) throw this.#failure;
    if (this.#outcome !== undefined) return this.#outcome;
    throw new SagaStateError(
      this.id,
      this.#status,
      'this run stopped (paused or lost its lease): use runner.resume(id)',
    );
  }

  outcomeOrFailure(): SagaOutcome {
    if (this.#outcome !== undefined) return this.#outcome;
    if (this.#failure instanceof SagaFailedError) return this.#makeOutcome();
    return this.settle();
  }

  /** One unit of work; `undefined` when finished. Throws setup errors (context, lease, corrupted). */
  async advance(): Promise<SagaUpdate | undefined> {
    if (this.finished || this.#closed) return undefined;
    if (!this.#initialized) {
      await this.#init();
      if (this.finished) return undefined;
    }
    if (this.#status === 'running') return this.#forward();
    return this.#compensateNext();
  }

  /** The consumer stopped reading: keep the saga resumable. */
  async pause(): Promise<void> {
    if (this.finished || !this.#initialized || this.#closed) return;
    this.#closed = true;
    if (this.#status === 'running') {
      this.#version = await this.#rt.store.commit({
        id: this.id,
        owner: this.#rt.owner,
        expectedVersion: this.#version,
        now: this.#rt.now(),
        status: 'paused',
        context: this.#ctxJson,
        cursor: this.#cursor,
        error: this.#errorJson,
        log: [],
        lease: 'release',
      });
      this.#status = 'paused';
    } else {
      await this.#rt.store.release({ id: this.id, owner: this.#rt.owner, expectedVersion: this.#version });
    }
  }

  // ---- setup ----

  async #init(): Promise<void> {
    const rt = this.#rt;
    if (this.#initial !== undefined) {
      const def = this.#def!;
      let ctx = this.#initial.context;
      if (def.schema !== undefined) {
        const result = await def.schema['~standard'].validate(ctx);
        if (result.issues !== undefined) {
          const issue = result.issues[0];
          const path = (issue?.path ?? []).map((p) =>
            typeof p === 'object' ? String((p as { key: PropertyKey }).key) : (p as string | number),
          );
          throw new SagaContextError(
            `is invalid: ${issue?.message ?? 'schema rejected it'}`,
            path as string[],
            {
              sagaId: this.id,
            },
          );
        }
        ctx = result.value;
      }
      const json = toJson(ctx, 'context');
      const now = rt.now();
      this.#deadlineAt = def.deadlineMs === undefined ? null : now + def.deadlineMs;
      await rt.store.create({
        id: this.id,
        name: def.name,
        definitionVersion: def.version,
        context: json,
        owner: rt.owner,
        now,
        leaseMs: rt.leaseMs,
        deadlineAt: this.#deadlineAt,
      });
      this.#ctx = JSON.parse(json);
      this.#ctxJson = json;
      this.#version = 1;
      this.#initialized = true;
      this.#initial = undefined;
      return;
    }
    // Resume.
    if (this.#def === undefined) {
      const stored = await rt.store.load(this.id);
      if (stored === undefined) throw new SagaNotFoundError(this.id);
      const def = rt.registry.get(stored.name);
      if (def === undefined) throw new UnknownSagaError(this.id, stored.name);
      this.#def = def;
    }
    const record = await rt.store.acquire({
      id: this.id,
      owner: rt.owner,
      now: rt.now(),
      leaseMs: rt.leaseMs,
    });
    if (record === undefined) {
      const exists = await rt.store.load(this.id);
      if (exists === undefined) throw new SagaNotFoundError(this.id);
      throw new SagaLeaseError(this.id, `the lease is held by ${exists.leaseOwner ?? 'another worker'}`);
    }
    if (record.name !== this.#def.name) throw new UnknownSagaError(this.id, record.name);
    this.#version = record.version;
    this.#initialized = true;
    try {
      await this.#rebuild(record);
    } catch (error) {
      if (error instanceof SagaCorruptedError) {
        await this.#markFailed(record, error);
        this.#failure = error;
      }
      throw error;
    }
  }

  async #markFailed(record: SagaRecord, error: unknown): Promise<void> {
    this.#version = await this.#rt.store.commit({
      id: this.id,
      owner: this.#rt.owner,
      expectedVersion: this.#version,
      now: this.#rt.now(),
      status: 'failed',
      context: record.context,
      cursor: record.cursor,
      error: errorJson(error),
      log: [],
      lease: 'release',
    });
  }

  async #rebuild(record: SagaRecord): Promise<void> {
    const def = this.#def!;
    const id = this.id;
    this.#deadlineAt = record.deadlineAt;
    this.#errorJson = record.error;
    if (record.error !== null) this.#forwardError = new StoredError(record.error);
    try {
      this.#ctx = JSON.parse(record.context);
    } catch (cause) {
      throw new SagaCorruptedError(id, 'context is not valid JSON', { cause });
    }
    this.#ctxJson = record.context;
    let log: readonly SagaLogEntry[];
    try {
      log = await this.#rt.store.history(id);
    } catch (cause) {
      // A store that cannot read a log row back (SerializationError) has a corrupted saga, like a bad row here.
      if (isCqrsError(cause, 'CQRS_SERIALIZATION')) {
        throw new SagaCorruptedError(id, 'a log row cannot be read', { cause });
      }
      throw cause;
    }
    for (const e of log) {
      const slotStep = def.steps[e.slot];
      if (!Number.isInteger(e.slot) || slotStep === undefined) {
        throw new SagaCorruptedError(id, `log row ${e.seq} names slot ${e.slot}`);
      }
      const step =
        e.stepId === slotStep.id
          ? slotStep
          : e.stepId === slotStep.fallback?.id
            ? (slotStep.fallback as NormalizedStep)
            : undefined;
      if (step === undefined)
        throw new SagaCorruptedError(id, `log row ${e.seq} names unknown step "${e.stepId}"`);
      if (e.status !== 'completed' && e.status !== 'failed') {
        throw new SagaCorruptedError(id, `log row ${e.seq} has status "${String(e.status)}"`);
      }
      if (e.action === 'act') {
        if (e.status === 'failed') {
          this.#failedStep = slotStep.id;
          continue;
        }
        if (this.#completed[e.slot] !== undefined) {
          throw new SagaCorruptedError(id, `log row ${e.seq}: step "${e.stepId}" completed twice`);
        }
        let result: unknown;
        try {
          result = e.result === null ? undefined : JSON.parse(e.result);
        } catch (cause) {
          throw new SagaCorruptedError(id, `log row ${e.seq}: result is not valid JSON`, { cause });
        }
        this.#completed[e.slot] = { step, result };
      } else if (e.action === 'compensate') {
        if (this.#completed[e.slot]?.step !== step) {
          throw new SagaCorruptedError(
            id,
            `log row ${e.seq}: compensation of "${e.stepId}", which did not complete`,
          );
        }
        if (e.status === 'completed') this.#compensated.add(e.slot);
      } else {
        throw new SagaCorruptedError(id, `log row ${e.seq} has action "${String(e.action)}"`);
      }
    }
    let done = 0;
    while (this.#completed[done] !== undefined) done++;
    const total = this.#completed.filter((c) => c !== undefined).length;
    if (done !== total || done !== record.cursor) {
      throw new SagaCorruptedError(
        id,
        `cursor ${record.cursor} disagrees with ${total} completed step(s) in the log`,
      );
    }
    this.#cursor = record.cursor;
    switch (record.status) {
      case 'running':
      case 'paused':
        this.#status = 'running';
        break;
      case 'compensating':
      case 'compensation_failed':
        this.#status = 'compensating';
        this.#aborting = true;
        break;
      case 'completed':
      case 'compensated':
        this.#status = record.status;
        await this.#rt.store.release({ id, owner: this.#rt.owner, expectedVersion: this.#version });
        if (record.status === 'completed') this.#outcome = this.#makeOutcome();
        else this.#failure = this.#makeFailure();
        break;
      case 'failed':
        await this.#rt.store.release({ id, owner: this.#rt.owner, expectedVersion: this.#version });
        throw new SagaStateError(id, 'failed', 'it needs manual attention (see its error and log)');
      default:
        throw new SagaCorruptedError(id, `unknown status "${String(record.status)}"`);
    }
  }

  // ---- forward ----

  async #forward(): Promise<SagaUpdate | undefined> {
    const def = this.#def!;
    const now = this.#rt.now();
    if (this.#abortRequested !== undefined)
      return this.#beginCompensation(this.#abortRequested, undefined, []);
    if (this.#deadlineAt !== null && now >= this.#deadlineAt) {
      return this.#beginCompensation(new SagaDeadlineError(this.id, this.#deadlineAt), undefined, []);
    }
    const slot = this.#cursor;
    const step = def.steps[slot]!;
    const startedAt = now;
    const log: SagaLogEntryInput[] = [];
    const snapshot = this.#ctxJson;
    let ran = step;
    let outcome: { result: unknown; attempts: number; events: AnyEvent[] };
    try {
      try {
        outcome = await this.#withLease(() => this.#runAct(step, true));
      } catch (thrown) {
        const fb = step.fallback;
        const primaryError = unwrapAttempt(thrown);
        if (primaryError instanceof SagaLeaseError) throw primaryError;
        if (fb === undefined || !(fb.on ?? defaultFallbackOn)(primaryError)) throw thrown;
        log.push(
          this.#row(step, slot, 'act', 'failed', (thrown as { attempts?: number }).attempts ?? 1, {
            startedAt,
            error: errorJson(primaryError),
          }),
        );
        this.#ctx = JSON.parse(snapshot);
        ran = fb;
        outcome = await this.#withLease(() => this.#runAct(fb, false));
      }
    } catch (error) {
      if (error instanceof SagaLeaseError) throw error;
      this.#ctx = JSON.parse(snapshot);
      log.push(
        this.#row(ran, slot, 'act', 'failed', (error as { attempts?: number }).attempts ?? 1, {
          startedAt,
          error: errorJson(error),
        }),
      );
      return this.#beginCompensation(unwrapAttempt(error), step.id, log);
    }
    let ctxJson: string;
    let resultJson: string;
    try {
      ctxJson = toJson(this.#ctx, 'context');
      resultJson = toJson(outcome.result, `result of step "${ran.id}"`);
    } catch (error) {
      this.#ctx = JSON.parse(snapshot);
      log.push(
        this.#row(ran, slot, 'act', 'failed', outcome.attempts, { startedAt, error: errorJson(error) }),
      );
      return this.#beginCompensation(error, step.id, log);
    }
    const last = slot + 1 === def.steps.length;
    log.push(this.#row(ran, slot, 'act', 'completed', outcome.attempts, { startedAt, result: resultJson }));
    await this.#commit(last ? 'completed' : 'running', ctxJson, slot + 1, log, outcome.events, last);
    this.#completed[slot] = { step: ran, result: outcome.result };
    this.#cursor = slot + 1;
    if (last) {
      this.#status = 'completed';
      this.#outcome = this.#makeOutcome();
    }
    await this.#publishAfter(outcome.events);
    return {
      sagaId: this.id,
      action: 'act',
      step: step.id,
      ran: ran.id,
      fallback: ran !== step,
      slot,
      attempts: outcome.attempts,
      result: outcome.result,
    };
  }

  /** Runs act with retries, timeout, deadline and (primary only) the circuit breaker. */
  async #runAct(
    step: NormalizedStep,
    primary: boolean,
  ): Promise<{ result: unknown; attempts: number; events: AnyEvent[] }> {
    const instance = this.#instance(step);
    const circuit = primary ? step.circuit : undefined;
    const breaker = circuit === undefined ? undefined : (circuit.breaker ?? this.#rt.breaker);
    return this.#attempts(step, step.retry, ACT_BACKOFF, step.timeoutMs, true, (tools, signal) => {
      if (breaker === undefined) return instance.act.call(instance.self, this.#ctx, tools);
      const call = () => Promise.resolve(instance.act.call(instance.self, this.#ctx, tools));
      return breaker.call(circuit!.key, call, signal);
    });
  }

  #instance(step: NormalizedStep): {
    self: unknown;
    act: (ctx: unknown, tools: StepTools) => unknown;
    compensate: ((ctx: unknown, result: unknown, tools: StepTools) => unknown) | undefined;
  } {
    if (step.use === undefined) return { self: undefined, act: step.act!, compensate: step.compensate };
    let inst = this.#instances.get(step.id) as
      | { act: (ctx: unknown, tools: StepTools) => unknown; compensate?: (...a: unknown[]) => unknown }
      | undefined;
    if (inst === undefined) {
      inst = this.#rt.resolver.resolve(step.use, { sagaId: this.id, stepId: step.id }) as typeof inst &
        object;
      this.#instances.set(step.id, inst);
    }
    return {
      self: inst,
      act: inst.act,
      compensate: inst.compensate as
        | ((ctx: unknown, result: unknown, tools: StepTools) => unknown)
        | undefined,
    };
  }

  /** The retry loop shared by act and compensate. Errors carry `attempts`. */
  async #attempts<T>(
    step: NormalizedStep,
    retry: StepRetryOptions,
    backoffDefaults: { initialMs: number; factor: number; maxMs: number },
    timeoutMs: number | undefined,
    forward: boolean,
    work: (tools: StepTools, signal: AbortSignal) => T | Promise<T>,
  ): Promise<{ result: T; attempts: number; events: AnyEvent[] }> {
    const max = retry.maxAttempts ?? (forward ? 1 : 3);
    const retryOn = retry.retryOn ?? defaultRetryOn;
    const backoff = { ...backoffDefaults, ...retry.backoff };
    const parent = forward ? this.#controller.signal : NEVER;
    for (let attempt = 1; ; attempt++) {
      const limit = this.#limit(timeoutMs, forward, step.id);
      const signal = limit === undefined ? parent : limit.signal;
      const events: AnyEvent[] = [];
      const tools = this.#tools(step, attempt, signal, events, !forward);
      try {
        if (signal.aborted) throw signal.reason;
        const value = work(tools, signal);
        // A synchronous step has finished already: nothing to race against its signal.
        const result = isThenable(value) ? await race(value, signal) : value;
        const src = this.#instances.get(step.id) as EventSourceLike | undefined;
        if (typeof src?.pullEvents === 'function') events.push(...src.pullEvents());
        return { result, attempts: attempt, events };
      } catch (error) {
        const src = this.#instances.get(step.id) as EventSourceLike | undefined;
        if (typeof src?.pullEvents === 'function') src.pullEvents();
        const deadline = forward && this.#deadlineAt !== null && this.#rt.now() >= this.#deadlineAt;
        const final = deadline ? new SagaDeadlineError(this.id, this.#deadlineAt!) : error;
        if (deadline || attempt >= max || !retryOn(final) || parent.aborted) {
          throw new AttemptsError(parent.aborted ? parent.reason : final, attempt);
        }
        try {
          await waitFor(backoffDelay(attempt, backoff, this.#rt.random), forward ? parent : undefined);
        } catch (reason) {
          throw new AttemptsError(reason, attempt);
        }
      } finally {
        limit?.dispose();
      }
    }
  }

  /** A signal for one attempt: the parent plus the step timeout and (forward) the saga deadline. */
  #limit(
    timeoutMs: number | undefined,
    forward: boolean,
    stepId: string,
  ): { signal: AbortSignal; dispose(): void } | undefined {
    const deadlineIn =
      forward && this.#deadlineAt !== null ? Math.max(0, this.#deadlineAt - this.#rt.now()) : undefined;
    if (timeoutMs === undefined && deadlineIn === undefined) return undefined;
    const controller = new AbortController();
    const parent = forward ? this.#controller.signal : undefined;
    const byDeadline = deadlineIn !== undefined && (timeoutMs === undefined || deadlineIn < timeoutMs);
    const ms = byDeadline ? deadlineIn! : timeoutMs!;
    const timer = setTimeout(() => {
      controller.abort(
        byDeadline
          ? new SagaDeadlineError(this.id, this.#deadlineAt!)
          : new TimeoutError(`step "${stepId}"`, ms),
      );
    }, ms);
    const onParent = () => controller.abort(parent!.reason);
    if (parent !== undefined) {
      if (parent.aborted) controller.abort(parent.reason);
      else parent.addEventListener('abort', onParent, { once: true });
    }
    return {
      signal: controller.signal,
      dispose() {
        clearTimeout(timer);
        parent?.removeEventListener('abort', onParent);
      },
    };
  }

  #tools(
    step: NormalizedStep,
    attempt: number,
    signal: AbortSignal,
    events: AnyEvent[],
    compensating: boolean,
  ): StepTools {
    return new Tools(this.#rt, this.id, this.#def!.name, step.id, attempt, signal, events, compensating);
  }

  /** Renews the lease while `work` runs; a lost lease aborts the step. */
  async #withLease<T>(work: () => Promise<T>): Promise<T> {
    const active = this.#rt.active;
    active.add(this);
    try {
      return await work();
    } catch (error) {
      const reason = this.#controller.signal.reason;
      if (reason instanceof SagaLeaseError) throw reason;
      throw error;
    } finally {
      active.delete(this);
    }
  }

  /** @internal Called by the runner's lease timer while a step of this run is executing. */
  renewLease(): void {
    const rt = this.#rt;
    rt.store
      .renew({
        id: this.id,
        owner: rt.owner,
        expectedVersion: this.#version,
        now: rt.now(),
        leaseMs: rt.leaseMs,
      })
      .then(async (ok) => {
        if (ok) return;
        // A commit of this run may have landed between reading the version and the renewal (it moves the
        // version and extends the lease itself): only a lease that is really someone else's, or expired, is lost.
        const stored = await rt.store.load(this.id);
        const ours =
          stored !== undefined &&
          stored.leaseOwner === rt.owner &&
          stored.leaseUntil !== null &&
          stored.leaseUntil > rt.now() &&
          stored.version >= this.#version;
        if (!ours) this.#controller.abort(new SagaLeaseError(this.id, 'lost the lease to another worker'));
      })
      .catch((error: unknown) => rt.onError(error, { sagaId: this.id, phase: 'lease' }));
  }

  // ---- compensation ----

  async #beginCompensation(
    error: unknown,
    failedStep: string | undefined,
    log: SagaLogEntryInput[],
  ): Promise<SagaUpdate | undefined> {
    this.#forwardError = error;
    this.#failedStep = failedStep;
    this.#errorJson = errorJson(error);
    this.#aborting = true;
    const pending = this.#pendingCompensations();
    const status: SagaStatus = pending.length === 0 ? 'compensated' : 'compensating';
    await this.#commit(status, this.#ctxJson, this.#cursor, log, [], pending.length === 0);
    this.#status = status;
    if (status === 'compensated') {
      this.#failure = this.#makeFailure();
      return undefined;
    }
    return this.#compensateNext();
  }

  #pendingCompensations(): number[] {
    const out: number[] = [];
    for (let slot = this.#completed.length - 1; slot >= 0; slot--) {
      const c = this.#completed[slot];
      if (
        c === undefined ||
        !c.step.compensable ||
        this.#compensated.has(slot) ||
        this.#compFailedNow.has(slot)
      ) {
        continue;
      }
      out.push(slot);
    }
    return out;
  }

  async #compensateNext(): Promise<SagaUpdate | undefined> {
    const pending = this.#pendingCompensations();
    if (pending.length === 0) {
      // Nothing left (e.g. resumed with every compensation already done): finish.
      const status = this.#compensationFailures.length > 0 ? 'compensation_failed' : 'compensated';
      await this.#commit(status, this.#ctxJson, this.#cursor, [], [], true);
      this.#status = status;
      this.#failure = this.#makeFailure();
      return undefined;
    }
    const slot = pending[0]!;
    const done = this.#completed[slot]!;
    const step = done.step;
    const startedAt = this.#rt.now();
    const snapshot = this.#ctxJson;
    let attempts: number;
    let events: AnyEvent[] = [];
    let failure: unknown;
    try {
      const r = await this.#withLease(() => {
        const inst = this.#instance(step);
        return this.#attempts(
          step,
          step.compensationRetry,
          COMPENSATE_BACKOFF,
          step.compensationTimeoutMs,
          false,
          (tools) => inst.compensate!.call(inst.self, this.#ctx, done.result, tools),
        );
      });
      attempts = r.attempts;
      events = r.events;
    } catch (error) {
      if (error instanceof SagaLeaseError) throw error;
      attempts = (error as { attempts?: number }).attempts ?? 1;
      failure = unwrapAttempt(error);
    }
    let ctxJson = snapshot;
    if (failure === undefined) {
      try {
        ctxJson = toJson(this.#ctx, 'context');
      } catch (error) {
        failure = error;
      }
    }
    if (failure !== undefined) this.#ctx = JSON.parse(snapshot);
    const remaining = pending.length - 1;
    const failures = this.#compensationFailures.length + (failure === undefined ? 0 : 1);
    const status: SagaStatus =
      remaining > 0 ? 'compensating' : failures > 0 ? 'compensation_failed' : 'compensated';
    const row = this.#row(
      step,
      slot,
      'compensate',
      failure === undefined ? 'completed' : 'failed',
      attempts,
      {
        startedAt,
        ...(failure === undefined ? {} : { error: errorJson(failure) }),
      },
    );
    await this.#commit(
      status,
      ctxJson,
      this.#cursor,
      [row],
      failure === undefined ? events : [],
      remaining === 0,
    );
    this.#status = status;
    if (failure === undefined) this.#compensated.add(slot);
    else {
      this.#compFailedNow.add(slot);
      this.#compensationFailures.push({ stepId: step.id, error: failure });
    }
    if (remaining === 0) this.#failure = this.#makeFailure();
    if (failure === undefined) await this.#publishAfter(events);
    return {
      sagaId: this.id,
      action: 'compensate',
      step: this.#def!.steps[slot]!.id,
      ran: step.id,
      slot,
      attempts,
      status: failure === undefined ? 'completed' : 'failed',
      error: failure,
    };
  }

  // ---- storage helpers ----

  #row(
    step: NormalizedStep,
    slot: number,
    action: 'act' | 'compensate',
    status: 'completed' | 'failed',
    attempts: number,
    extra: { startedAt: number; result?: string; error?: string },
  ): SagaLogEntryInput {
    return {
      stepId: step.id,
      slot,
      action,
      status,
      attempts,
      result: extra.result ?? null,
      error: extra.error ?? null,
      startedAt: extra.startedAt,
      at: this.#rt.now(),
    };
  }

  async #commit(
    status: SagaStatus,
    ctxJson: string,
    cursor: number,
    log: SagaLogEntryInput[],
    events: AnyEvent[],
    release: boolean,
  ): Promise<void> {
    const rt = this.#rt;
    const staged = rt.outbox === true && events.length > 0;
    try {
      this.#version = await rt.store.commit({
        id: this.id,
        owner: rt.owner,
        expectedVersion: this.#version,
        now: rt.now(),
        status,
        context: ctxJson,
        cursor,
        error: this.#errorJson,
        log,
        ...(staged ? { events } : {}),
        lease: release ? 'release' : rt.leaseMs,
      });
    } catch (error) {
      if (isCqrsError(error, 'CQRS_CONCURRENCY')) {
        this.#closed = true;
        throw new SagaLeaseError(this.id, 'another worker took the saga over; this run stops', {
          cause: error,
        });
      }
      throw error;
    }
    this.#ctxJson = ctxJson;
  }

  async #publishAfter(events: AnyEvent[]): Promise<void> {
    if (events.length === 0 || this.#rt.outbox === true) return;
    const rt = this.#rt;
    try {
      if (typeof rt.outbox === 'function') await rt.outbox(events);
      else for (const event of events) await rt.mediator!.publish(event);
    } catch (error) {
      rt.onError(error, { sagaId: this.id, phase: 'publish' });
    }
  }

  #makeOutcome(): SagaOutcome {
    const results: Record<string, unknown> = {};
    const def = this.#def!;
    this.#completed.forEach((c, slot) => {
      if (c !== undefined) results[def.steps[slot]!.id] = c.result;
    });
    return Object.freeze({
      sagaId: this.id,
      name: def.name,
      status: this.#status,
      context: this.#ctx,
      results: Object.freeze(results),
      error: this.#forwardError,
      compensationFailures: Object.freeze([...this.#compensationFailures]),
    });
  }

  #makeFailure(): SagaFailedError {
    return new SagaFailedError({
      sagaId: this.id,
      sagaName: this.#def!.name,
      status: this.#status,
      stepId: this.#failedStep,
      cause: this.#forwardError,
      compensationFailures: this.#compensationFailures,
      context: this.#ctx,
    });
  }

  /** @internal Whether a failure was a rollback (for recovery reports). */
  get aborting(): boolean {
    return this.#aborting;
  }
}

/** The tools of one attempt (methods on the prototype: one allocation per attempt). */
class Tools implements StepTools {
  readonly sagaId: string;
  readonly sagaName: string;
  readonly stepId: string;
  readonly attempt: number;
  readonly signal: AbortSignal;
  readonly #rt: Runtime;
  readonly #events: AnyEvent[];
  readonly #compensating: boolean;
  constructor(
    rt: Runtime,
    sagaId: string,
    sagaName: string,
    stepId: string,
    attempt: number,
    signal: AbortSignal,
    events: AnyEvent[],
    compensating: boolean,
  ) {
    this.#rt = rt;
    this.sagaId = sagaId;
    this.sagaName = sagaName;
    this.stepId = stepId;
    this.attempt = attempt;
    this.signal = signal;
    this.#events = events;
    this.#compensating = compensating;
  }
  get mediator(): Mediator | undefined {
    return this.#rt.mediator;
  }
  idempotencyKey(scope?: string): string {
    const base = `${this.sagaId}:${this.stepId}${this.#compensating ? ':compensate' : ''}`;
    return scope === undefined ? base : `${base}:${scope}`;
  }
  send<TCommand extends AnyCommand>(command: TCommand): Promise<InferResult<TCommand>> {
    const mediator = this.#rt.mediator;
    if (mediator === undefined) {
      return Promise.reject(
        new ConfigurationError('tools.send needs a mediator: pass one to createSagaRunner'),
      );
    }
    return mediator.send(command, { signal: this.signal });
  }
  publish(...events: readonly AnyEvent[]): void {
    if (this.#rt.outbox === undefined && this.#rt.mediator === undefined) {
      throw new ConfigurationError(
        'tools.publish needs an outbox or a mediator: pass one to createSagaRunner',
      );
    }
    this.#events.push(...events);
  }
}

/** An error of the retry loop carrying the attempt count; unwrapped before it reaches users. */
class AttemptsError extends Error {
  readonly error: unknown;
  readonly attempts: number;
  constructor(error: unknown, attempts: number) {
    super('attempts');
    this.error = error;
    this.attempts = attempts;
  }
}

function unwrapAttempt(error: unknown): unknown {
  return error instanceof AttemptsError ? error.error : error;
}

function execution(run: SagaRun): SagaExecution {
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
    async recover(opts = {}) {
      const found = await store.findRecoverable({
        now: rt.now(),
        limit: opts.limit ?? 100,
        staleAfterMs: opts.staleAfterMs ?? 0,
        names: opts.names ?? [...registry.keys()],
        ...(opts.maxAttempts === undefined ? {} : { maxAttempts: opts.maxAttempts }),
      });
      const report = { found: found.length, completed: 0, compensated: 0, compensationFailed: 0, skipped: 0 };
      const errors: { sagaId: string; error: unknown }[] = [];
      let next = 0;
      const worker = async () => {
        while (next < found.length) {
          const record = found[next++]!;
          const def = registry.get(record.name);
          try {
            if (def === undefined) throw new UnknownSagaError(record.id, record.name);
            const run = new SagaRun(rt, record.id, def);
            const outcome = await execution(run).done();
            if (outcome.status === 'completed') report.completed++;
          } catch (error) {
            if (error instanceof SagaFailedError) {
              if (error.status === 'compensation_failed') report.compensationFailed++;
              else report.compensated++;
            } else if (error instanceof SagaLeaseError) report.skipped++;
            else {
              errors.push({ sagaId: record.id, error });
              rt.onError(error, { sagaId: record.id, phase: 'recover' });
            }
          }
        }
      };
      await Promise.all(Array.from({ length: Math.max(1, opts.concurrency ?? 1) }, worker));
      return Object.freeze({ ...report, errors: Object.freeze(errors) });
    },
    list: (query) => store.list(query),
    history: (sagaId) => store.history(sagaId),
  };
  return runner;
}
