/**
 * The attempt loop shared by a step's act and its compensate: step instances, the tools of an attempt, the
 * per-attempt signal (timeout, deadline, abort), retries with backoff. @internal
 * @module
 */
import {
  type AnyCommand,
  type AnyEvent,
  type BackoffOptions,
  ConfigurationError,
  type InferResult,
  isRetryable,
  type Mediator,
  TimeoutError,
} from '@cqrs-ts/core';
import { backoffDelay, sagaStepChannel } from '@cqrs-ts/core/spi';
import type { NormalizedStep, StepRetryOptions, StepTools } from './define-saga.ts';
import { CircuitOpenError, SagaAbortedError, SagaDeadlineError, SagaLeaseError } from './saga-errors.ts';
import type { EventSourceLike, Runtime, SagaRun } from './saga-run.ts';

const NOT_RETRIED = (error: unknown) =>
  !(
    error instanceof CircuitOpenError ||
    error instanceof SagaAbortedError ||
    error instanceof SagaDeadlineError ||
    error instanceof SagaLeaseError
  );
/** Errors retried when a step sets no `retryOn`: retryable ones, except open circuits, aborts and lost leases. */
export const defaultRetryOn = (error: unknown) => isRetryable(error) && NOT_RETRIED(error);
export const ACT_BACKOFF = { initialMs: 100, factor: 2, maxMs: 10_000 } as const;

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

/** An error of the retry loop carrying the attempt count; unwrapped before it reaches users. */
export class AttemptsError extends Error {
  readonly error: unknown;
  readonly attempts: number;
  constructor(error: unknown, attempts: number) {
    super('attempts');
    this.error = error;
    this.attempts = attempts;
  }
}

export function unwrapAttempt(error: unknown): unknown {
  return error instanceof AttemptsError ? error.error : error;
}

/** Attempts made before `error` (1 when the error does not carry them). */
export function attemptsOf(error: unknown): number {
  return (error as { attempts?: number }).attempts ?? 1;
}

/** What one finished attempt loop produced. */
export interface Attempted<T> {
  readonly result: T;
  readonly attempts: number;
  readonly events: AnyEvent[];
}

/** The act/compensate functions of a step, bound to its class instance when it has one. */
export interface StepInstance {
  readonly self: unknown;
  readonly act: (ctx: unknown, tools: StepTools) => unknown;
  readonly compensate: ((ctx: unknown, result: unknown, tools: StepTools) => unknown) | undefined;
}

type StepObject = {
  act: (ctx: unknown, tools: StepTools) => unknown;
  compensate?: (...a: unknown[]) => unknown;
};

/**
 * The step's functions; a class step is resolved once per run and reused (same instance acts and compensates).
 * A promise only when the resolver builds the instance asynchronously.
 */
export function stepInstance(run: SagaRun, step: NormalizedStep): StepInstance | Promise<StepInstance> {
  if (step.use === undefined) return { self: undefined, act: step.act!, compensate: step.compensate };
  const inst = run.instances.get(step.id) as StepObject | undefined;
  if (inst !== undefined) return bindStep(inst);
  const made = run.rt.resolver.resolve(step.use, { sagaId: run.id, stepId: step.id }) as
    | StepObject
    | Promise<StepObject>;
  if (!isThenable(made)) {
    run.instances.set(step.id, made);
    return bindStep(made);
  }
  return Promise.resolve(made).then((resolved) => {
    run.instances.set(step.id, resolved);
    return bindStep(resolved);
  });
}

function bindStep(inst: StepObject): StepInstance {
  return {
    self: inst,
    act: inst.act,
    compensate: inst.compensate as ((ctx: unknown, result: unknown, tools: StepTools) => unknown) | undefined,
  };
}

/** How one attempt loop runs. */
export interface AttemptPolicy {
  readonly retry: StepRetryOptions;
  /** Defaults of the backoff; the step's `retry.backoff` overrides them. */
  readonly backoff: BackoffOptions;
  readonly timeoutMs: number | undefined;
  /**
   * Forward (act): bound by the run's signal (abort, deadline, lost lease) and the saga deadline, one attempt
   * unless the step says more. Compensate: bound by a lost lease only, attempts until `until`.
   */
  readonly forward: boolean;
  /** No retry waits past this time (epoch ms): the loop ends with the last error instead. */
  readonly until?: number;
  /** A fallback running after its primary step failed (reported on the `cqrs-ts:saga.step` channel). */
  readonly fallback?: boolean;
}

/** The retry loop shared by act and compensate. Errors are {@link AttemptsError}s carrying the attempts. */
export function attempt<T>(
  run: SagaRun,
  step: NormalizedStep,
  policy: AttemptPolicy,
  work: (tools: StepTools, signal: AbortSignal) => T | Promise<T>,
): Promise<Attempted<T>> {
  if (!sagaStepChannel.hasSubscribers) return attempts(run, step, policy, work);
  return sagaStepChannel.tracePromise(() => attempts(run, step, policy, work), {
    saga: run.def!.name,
    sagaId: run.id,
    step: step.id,
    action: policy.forward ? 'act' : 'compensate',
    fallback: policy.fallback === true,
  });
}

async function attempts<T>(
  run: SagaRun,
  step: NormalizedStep,
  policy: AttemptPolicy,
  work: (tools: StepTools, signal: AbortSignal) => T | Promise<T>,
): Promise<Attempted<T>> {
  const { retry, forward, until } = policy;
  const max = retry.maxAttempts ?? (forward ? 1 : Number.POSITIVE_INFINITY);
  const retryOn = retry.retryOn ?? defaultRetryOn;
  const backoff = retry.backoff === undefined ? policy.backoff : { ...policy.backoff, ...retry.backoff };
  const parent = forward ? run.controller.signal : run.leaseController.signal;
  for (let n = 1; ; n++) {
    const limit = attemptLimit(run, policy.timeoutMs, forward, step.id);
    const signal = limit === undefined ? parent : limit.signal;
    const events: AnyEvent[] = [];
    const tools = new Tools(run.rt, run.id, run.def!.name, step.id, n, signal, events, !forward);
    try {
      if (signal.aborted) throw signal.reason;
      const value = work(tools, signal);
      // A synchronous step has finished already: nothing to race against its signal.
      const result = isThenable(value) ? await race(value, signal) : value;
      const src = run.instances.get(step.id) as EventSourceLike | undefined;
      if (typeof src?.pullEvents === 'function') events.push(...src.pullEvents());
      return { result, attempts: n, events };
    } catch (error) {
      const src = run.instances.get(step.id) as EventSourceLike | undefined;
      if (typeof src?.pullEvents === 'function') src.pullEvents();
      const deadline = forward && run.deadlineAt !== null && run.rt.now() >= run.deadlineAt;
      const final = deadline ? new SagaDeadlineError(run.id, run.deadlineAt!) : error;
      if (deadline || n >= max || !retryOn(final) || parent.aborted) {
        throw new AttemptsError(parent.aborted ? parent.reason : final, n);
      }
      const delay = backoffDelay(n, backoff, run.rt.random);
      if (until !== undefined && run.rt.now() + delay > until) throw new AttemptsError(final, n);
      try {
        await waitFor(delay, parent);
      } catch (reason) {
        throw new AttemptsError(reason, n);
      }
    } finally {
      limit?.dispose();
    }
  }
}

/** A signal for one attempt: the parent (run or lease) plus the step timeout and (forward) the saga deadline. */
function attemptLimit(
  run: SagaRun,
  timeoutMs: number | undefined,
  forward: boolean,
  stepId: string,
): { signal: AbortSignal; dispose(): void } | undefined {
  const deadlineAt = run.deadlineAt;
  const deadlineIn = forward && deadlineAt !== null ? Math.max(0, deadlineAt - run.rt.now()) : undefined;
  if (timeoutMs === undefined && deadlineIn === undefined) return undefined;
  const controller = new AbortController();
  const parent = forward ? run.controller.signal : run.leaseController.signal;
  const byDeadline = deadlineIn !== undefined && (timeoutMs === undefined || deadlineIn < timeoutMs);
  const ms = byDeadline ? deadlineIn! : timeoutMs!;
  const timer = setTimeout(() => {
    controller.abort(
      byDeadline ? new SagaDeadlineError(run.id, deadlineAt!) : new TimeoutError(`step "${stepId}"`, ms),
    );
  }, ms);
  const onParent = () => controller.abort(parent.reason);
  if (parent.aborted) controller.abort(parent.reason);
  else parent.addEventListener('abort', onParent, { once: true });
  return {
    signal: controller.signal,
    dispose() {
      clearTimeout(timer);
      parent.removeEventListener('abort', onParent);
    },
  };
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
