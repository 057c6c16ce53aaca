/**
 * Compensation: completed steps are undone newest first, each after its retries; one that keeps failing is
 * logged and the others still run. @internal
 * @module
 */
import type { AnyEvent } from '@cqrs-ts/core';
import type { SagaLogEntryInput, SagaStatus } from '@cqrs-ts/core/spi';
import { toJson } from './define-saga.ts';
import { attempt, attemptsOf, COMPENSATE_BACKOFF, stepInstance, unwrapAttempt } from './saga-attempts.ts';
import { SagaLeaseError } from './saga-errors.ts';
import { withLease } from './saga-lease.ts';
import type { SagaRun } from './saga-run.ts';
import type { SagaUpdate } from './saga-runner.ts';
import { commitRun, errorJson, logRow, publishAfter } from './saga-storage.ts';

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
    release: pending.length === 0,
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

/** Compensates the newest pending step and records it; ends the saga when none is left. */
export async function compensateNext(run: SagaRun): Promise<SagaUpdate | undefined> {
  const pending = pendingCompensations(run);
  if (pending.length === 0) {
    // Nothing left (e.g. resumed with every compensation already done): finish.
    const status = run.compensationFailures.length > 0 ? 'compensation_failed' : 'compensated';
    await commitRun(run, {
      status,
      context: run.ctxJson,
      cursor: run.cursor,
      log: [],
      events: [],
      release: true,
    });
    run.status = status;
    run.failure = run.makeFailure();
    return undefined;
  }
  const slot = pending[0]!;
  const done = run.completed[slot]!;
  const step = done.step;
  const startedAt = run.rt.now();
  const snapshot = run.ctxJson;
  let attempts: number;
  let events: AnyEvent[] = [];
  let failure: unknown;
  try {
    const r = await withLease(run, async () => {
      const inst = stepInstance(run, step);
      const policy = {
        retry: step.compensationRetry,
        backoff: COMPENSATE_BACKOFF,
        timeoutMs: step.compensationTimeoutMs,
        forward: false,
      };
      return attempt(run, step, policy, (tools) =>
        inst.compensate!.call(inst.self, run.ctx, done.result, tools),
      );
    });
    attempts = r.attempts;
    events = r.events;
  } catch (error) {
    if (error instanceof SagaLeaseError) throw error;
    attempts = attemptsOf(error);
    failure = unwrapAttempt(error);
  }
  let ctxJson = snapshot;
  if (failure === undefined) {
    try {
      ctxJson = toJson(run.ctx, 'context');
    } catch (error) {
      failure = error;
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
    release: remaining === 0,
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
