/**
 * Recovery: a pass over interrupted sagas (running or compensating, lease free or expired), each taken with
 * its lease and run to its end. One bad saga never stops the others. @internal
 * @module
 */
import { ConfigurationError } from '@cqrs-ts/core';
import { SagaFailedError, SagaLeaseError, UnknownSagaError } from './saga-errors.ts';
import { execution, type Runtime, SagaRun } from './saga-run.ts';
import type { RecoverOptions, RecoveryReport, SagaHealth } from './saga-runner.ts';

/** One recovery pass (see {@link RecoverOptions}). */
export async function recover(rt: Runtime, opts: RecoverOptions = {}): Promise<RecoveryReport> {
  const found = await rt.store.findRecoverable({
    now: rt.now(),
    limit: opts.limit ?? 100,
    staleAfterMs: opts.staleAfterMs ?? 0,
    names: opts.names ?? [...rt.registry.keys()],
    ...(opts.maxAttempts === undefined ? {} : { maxAttempts: opts.maxAttempts }),
  });
  const report = {
    found: found.length,
    completed: 0,
    compensated: 0,
    compensationFailed: 0,
    needsOperator: 0,
    skipped: 0,
  };
  const errors: { sagaId: string; error: unknown }[] = [];
  let next = 0;
  const worker = async () => {
    while (next < found.length) {
      const record = found[next++]!;
      const def = rt.registry.get(record.name);
      try {
        if (def === undefined) throw new UnknownSagaError(record.id, record.name);
        const run = new SagaRun(rt, record.id, def);
        run.expectedVersion = record.version;
        const outcome = await execution(run).done();
        if (outcome.status === 'completed') report.completed++;
      } catch (error) {
        if (error instanceof SagaFailedError) {
          if (error.status === 'compensation_failed') {
            report.compensationFailed++;
            if (error.retryAt === undefined) report.needsOperator++;
          } else report.compensated++;
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
}

/** Counts the `compensation_failed` sagas of `names` that need an operator and those recovery still retries. */
export async function health(rt: Runtime, names: readonly string[]): Promise<SagaHealth> {
  if (!Array.isArray(names) || names.some((n) => typeof n !== 'string')) {
    throw new ConfigurationError('health({ names }): names must be an array of saga names');
  }
  let needsOperator = 0;
  let retrying = 0;
  let afterId: string | undefined;
  for (;;) {
    const page = await rt.store.list({
      statuses: ['compensation_failed'],
      names,
      limit: 500,
      ...(afterId === undefined ? {} : { afterId }),
    });
    for (const r of page) {
      if (r.leaseUntil === null) needsOperator++;
      else retrying++;
    }
    if (page.length < 500) break;
    afterId = page[page.length - 1]!.id;
  }
  return Object.freeze({ needsOperator, retrying, active: rt.inProgress.size });
}
