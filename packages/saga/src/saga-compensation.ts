/**
 * Compensation: completed steps are undone newest first, each retried with backoff for a pass; one that keeps
 * failing is logged and the others still run. A pass that ends with failures leaves the saga
 * `compensation_failed` with a retry time while its budget lasts, so recovery takes it again. @internal
 * @module
 */
import { type AnyEvent, type BackoffOptions, ConfigurationError } from '@cqrs-ts/core';
import type { SagaLogEntryInput, SagaStatus } from '@cqrs-ts/core/spi';
import { toJson } from './define-saga.ts';
import { attempt, attemptsOf, defaultRetryOn, stepInstance, unwrapAttempt } from './saga-attempts.ts';
import { SagaLeaseError } from './saga-errors.ts';
import { ensureLease, leaseNeedsCare, withLease } from './saga-lease.ts';
import type { SagaRun } from './saga-run.ts';
import type { CompensationPolicy, SagaUpdate } from './saga-runner.ts';
import { commitRun, errorJson, logRow, publishAfter } from './saga-storage.ts';

/** A {@link CompensationPolicy} with its defaults applied. */
export interface ResolvedCompensationPolicy {
  readonly backoff: Required<BackoffOptions>;
  readonly retryForMs: number;
  readonly coolDownMs: number;
  readonly budgetMs: number;
}

const DEFAULT_BACKOFF: Required<BackoffOptions> = Object.freeze({
  initialMs: 1_000,
  factor: 2,
  maxMs: 30_000,
  jitter: 'full',
});

/**
 * Applies the defaults and refuses a policy that cannot be honoured.
 * @throws ConfigurationError (`CQRS_CONFIGURATION`) naming the first bad field.
 */
export function resolveCompensationPolicy(
  policy: CompensationPolicy | undefined,
): ResolvedCompensationPolicy {
  if (policy !== undefined && (typeof policy !== 'object' || policy === null)) {
    throw new ConfigurationError('compensation must be an object');
  }
  const p = policy ?? {};
  if (p.backoff !== undefined && (typeof p.backoff !== 'object' || p.backoff === null)) {
    throw new ConfigurationError('compensation.backoff must be an object');
  }
  const b = { ...DEFAULT_BACKOFF, ...p.backoff };
  const whole = (name: string, value: unknown, min: number, infinite = false): number => {
    if (
      (infinite && value === Number.POSITIVE_INFINITY) ||
      (Number.isSafeInteger(value) && (value as number) >= min)
    ) {
      return value as number;
    }
    throw new ConfigurationError(
      `compensation.${name} must be an integer >= ${min}${infinite ? ' or Infinity' : ''}, got ${String(value)}`,
    );
  };
  whole('backoff.initialMs', b.initialMs, 1);
  whole('backoff.maxMs', b.maxMs, b.initialMs);
  if (!(typeof b.factor === 'number' && Number.isFinite(b.factor) && b.factor >= 1)) {
    throw new ConfigurationError(
      `compensation.backoff.factor must be a number >= 1, got ${String(b.factor)}`,
    );
  }
  if (b.jitter !== 'full' && b.jitter !== 'none') {
    throw new ConfigurationError(
      `compensation.backoff.jitter must be 'full' or 'none', got ${String(b.jitter)}`,
    );
  }
  return Object.freeze({
    backoff: Object.freeze(b),
    retryForMs: whole('retryForMs', p.retryForMs ?? 10_000, 0),
    coolDownMs: whole('coolDownMs', p.coolDownMs ?? 30_000, 1),
    budgetMs: whole('budgetMs', p.budgetMs ?? 86_400_000, 0, true),
  });
}

/** Records the forward error and the switch to compensating, then compensates the newest completed step. */
export async function beginCompensation(
  run: SagaRun,
  error: unknown,
  failedStep: string | undefined,
  log: SagaLogEntryInput[],
): Promise<SagaUpdate | undefined> {
  run.forwardError = error;
  run.failedStep = failedStep;
  run.errorJson = errorJson(error);
  run.aborting = true;
  const pending = pendingCompensations(run);
  const status: SagaStatus = pending.length === 0 ? 'compensated' : 'compensating';
  await commitRun(run, {
    status,
    context: run.ctxJson,
    cursor: run.cursor,
    log,
    events: [],
    lease: pending.length === 0 ? 'release' : 'extend',
  });
  run.status = status;
  if (status === 'compensated') {
    run.failure = run.makeFailure();
    return undefined;
  }
  return compensateNext(run);
}

/** Slots still to compensate, newest first (compensable, not compensated, not failed in this pass). */
function pendingCompensations(run: SagaRun): number[] {
  const out: number[] = [];
  for (let slot = run.completed.length - 1; slot >= 0; slot--) {
    const c = run.completed[slot];
    if (c === undefined || !c.step.compensable || run.compensated.has(slot) || run.compFailedNow.has(slot)) {
      continue;
    }
    out.push(slot);
  }
  return out;
}

/**
 * The end of a pass with failed compensations: a retry time for recovery while the budget lasts and every error
 * may be retried; otherwise the lease is released and the saga waits for an operator.
 */
function endOfPass(run: SagaRun): 'release' | { readonly retryAt: number } {
  const policy = run.rt.compensation;
  const retryAt = run.rt.now() + policy.coolDownMs;
  const since = run.compensatingSince;
  run.retryAt =
    run.compensationGaveUp || since === undefined || retryAt >= since + policy.budgetMs ? undefined : retryAt;
  return run.retryAt === undefined ? 'release' : { retryAt: run.retryAt };
}

/** Compensates the newest pending step and records it; ends the saga when none is left. */
export async function compensateNext(run: SagaRun): Promise<SagaUpdate | undefined> {
  const pending = pendingCompensations(run);
  if (pending.length === 0) {
    // Nothing left (e.g. resumed with every compensation already done): finish.
    const failed = run.compensationFailures.length > 0;
    await commitRun(run, {
      status: failed ? 'compensation_failed' : 'compensated',
      context: run.ctxJson,
      cursor: run.cursor,
      log: [],
      events: [],
      lease: failed ? endOfPass(run) : 'release',
    });
    run.status = failed ? 'compensation_failed' : 'compensated';
    run.failure = run.makeFailure();
    return undefined;
  }
  if (leaseNeedsCare(run)) await ensureLease(run);
  const slot = pending[0]!;
  const done = run.completed[slot]!;
  const step = done.step;
  const policy = run.rt.compensation;
  const startedAt = run.rt.now();
  run.compensatingSince ??= startedAt;
  const until = Math.min(startedAt + policy.retryForMs, run.compensatingSince + policy.budgetMs);
  const snapshot = run.ctxJson;
  let attempts: number;
  let events: AnyEvent[] = [];
  let failure: unknown;
  try {
    const r = await withLease(run, async () => {
      const got = stepInstance(run, step);
      const inst = got instanceof Promise ? await got : got;
      const attemptPolicy = {
        retry: step.compensationRetry,
        backoff: policy.backoff,
        timeoutMs: step.compensationTimeoutMs,
        forward: false,
        until,
      };
      return attempt(run, step, attemptPolicy, (tools) =>
        inst.compensate!.call(inst.self, run.ctx, done.result, tools),
      );
    });
    attempts = r.attempts;
    events = r.events;
  } catch (error) {
    if (error instanceof SagaLeaseError) throw error;
    attempts = attemptsOf(error);
    failure = unwrapAttempt(error);
    if (!(step.compensationRetry.retryOn ?? defaultRetryOn)(failure)) run.compensationGaveUp = true;
  }
  let ctxJson = snapshot;
  if (failure === undefined) {
    try {
      ctxJson = toJson(run.ctx, 'context');
    } catch (error) {
      failure = error;
      run.compensationGaveUp = true; // the same compensation would leave the same context
    }
  }
  if (failure !== undefined) run.ctx = JSON.parse(snapshot);
  const remaining = pending.length - 1;
  const failures = run.compensationFailures.length + (failure === undefined ? 0 : 1);
  const status: SagaStatus =
    remaining > 0 ? 'compensating' : failures > 0 ? 'compensation_failed' : 'compensated';
  const row = logRow(run, step, {
    slot,
    action: 'compensate',
    status: failure === undefined ? 'completed' : 'failed',
    attempts,
    startedAt,
    ...(failure === undefined ? {} : { error: errorJson(failure) }),
  });
  await commitRun(run, {
    status,
    context: ctxJson,
    cursor: run.cursor,
    log: [row],
    events: failure === undefined ? events : [],
    lease: remaining > 0 ? 'extend' : failures > 0 ? endOfPass(run) : 'release',
  });
  run.status = status;
  if (failure === undefined) run.compensated.add(slot);
  else {
    run.compFailedNow.add(slot);
    run.compensationFailures.push({ stepId: step.id, error: failure });
  }
  if (remaining === 0) run.failure = run.makeFailure();
  if (failure === undefined) await publishAfter(run, events);
  return {
    sagaId: run.id,
    action: 'compensate',
    step: run.def!.steps[slot]!.id,
    ran: step.id,
    slot,
    attempts,
    status: failure === undefined ? 'completed' : 'failed',
    error: failure,
  };
}
