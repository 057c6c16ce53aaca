/**
 * Going forward: one step (primary, then its fallback), recorded with the new context, or the start of the
 * compensation when it fails. @internal
 * @module
 */
import type { SagaLogEntryInput } from '@cqrs-ts/core/spi';
import { type NormalizedStep, toJson } from './define-saga.ts';
import {
  ACT_BACKOFF,
  type Attempted,
  attempt,
  attemptsOf,
  stepInstance,
  unwrapAttempt,
} from './saga-attempts.ts';
import { beginCompensation } from './saga-compensation.ts';
import { SagaAbortedError, SagaDeadlineError, SagaLeaseError } from './saga-errors.ts';
import { ensureLease, leaseNeedsCare, withLease } from './saga-lease.ts';
import type { SagaRun } from './saga-run.ts';
import type { SagaUpdate } from './saga-runner.ts';
import { commitRun, errorJson, logRow, publishAfter } from './saga-storage.ts';

const defaultFallbackOn = (error: unknown) =>
  !(
    error instanceof SagaAbortedError ||
    error instanceof SagaDeadlineError ||
    error instanceof SagaLeaseError
  );

/** Runs the step at the cursor (or compensates when aborted or past the deadline). */
export async function forward(run: SagaRun): Promise<SagaUpdate | undefined> {
  const def = run.def!;
  const now = run.rt.now();
  if (run.abortRequested !== undefined) return beginCompensation(run, run.abortRequested, undefined, []);
  if (run.deadlineAt !== null && now >= run.deadlineAt) {
    return beginCompensation(run, new SagaDeadlineError(run.id, run.deadlineAt), undefined, []);
  }
  if (leaseNeedsCare(run)) await ensureLease(run);
  const slot = run.cursor;
  const step = def.steps[slot]!;
  const startedAt = now;
  const log: SagaLogEntryInput[] = [];
  const snapshot = run.ctxJson;
  const failedRow = (ran: NormalizedStep, attempts: number, error: unknown) =>
    logRow(run, ran, { slot, action: 'act', status: 'failed', attempts, startedAt, error: errorJson(error) });
  let ran = step;
  let outcome: Attempted<unknown>;
  try {
    try {
      outcome = await withLease(run, () => runAct(run, step, true));
    } catch (thrown) {
      const fb = step.fallback;
      const primaryError = unwrapAttempt(thrown);
      if (primaryError instanceof SagaLeaseError) throw primaryError;
      if (fb === undefined || !(fb.on ?? defaultFallbackOn)(primaryError)) throw thrown;
      log.push(failedRow(step, attemptsOf(thrown), primaryError));
      run.ctx = JSON.parse(snapshot);
      ran = fb;
      outcome = await withLease(run, () => runAct(run, fb, false));
    }
  } catch (error) {
    if (error instanceof SagaLeaseError) throw error;
    run.ctx = JSON.parse(snapshot);
    log.push(failedRow(ran, attemptsOf(error), unwrapAttempt(error)));
    return beginCompensation(run, unwrapAttempt(error), step.id, log);
  }
  let ctxJson: string;
  let resultJson: string;
  try {
    ctxJson = toJson(run.ctx, 'context');
    resultJson = toJson(outcome.result, `result of step "${ran.id}"`);
  } catch (error) {
    run.ctx = JSON.parse(snapshot);
    log.push(failedRow(ran, outcome.attempts, error));
    return beginCompensation(run, error, step.id, log);
  }
  const last = slot + 1 === def.steps.length;
  log.push(
    logRow(run, ran, {
      slot,
      action: 'act',
      status: 'completed',
      attempts: outcome.attempts,
      startedAt,
      result: resultJson,
    }),
  );
  await commitRun(run, {
    status: last ? 'completed' : 'running',
    context: ctxJson,
    cursor: slot + 1,
    log,
    events: outcome.events,
    lease: last ? 'release' : 'extend',
  });
  run.completed[slot] = { step: ran, result: outcome.result };
  run.cursor = slot + 1;
  if (last) {
    run.status = 'completed';
    run.outcome = run.makeOutcome();
  }
  await publishAfter(run, outcome.events);
  return {
    sagaId: run.id,
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
async function runAct(run: SagaRun, step: NormalizedStep, primary: boolean): Promise<Attempted<unknown>> {
  const got = stepInstance(run, step);
  const instance = got instanceof Promise ? await got : got;
  const circuit = primary ? step.circuit : undefined;
  const breaker = circuit === undefined ? undefined : (circuit.breaker ?? run.rt.breaker);
  const policy = {
    retry: step.retry,
    backoff: ACT_BACKOFF,
    timeoutMs: step.timeoutMs,
    forward: true,
    fallback: !primary,
  };
  return attempt(run, step, policy, (tools, signal) => {
    if (breaker === undefined) return instance.act.call(instance.self, run.ctx, tools);
    const call = () => Promise.resolve(instance.act.call(instance.self, run.ctx, tools));
    return breaker.call(circuit!.key, call, signal);
  });
}
