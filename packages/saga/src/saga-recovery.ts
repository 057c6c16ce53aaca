/**
 * Recovery: a pass over interrupted sagas (running or compensating, lease free or expired), each taken with
 * its lease and run to its end. One bad saga never stops the others. @internal
 * @module
 */
import { SagaFailedError, SagaLeaseError, UnknownSagaError } from './saga-errors.ts';
import { execution, type Runtime, SagaRun } from './saga-run.ts';
import type { RecoverOptions, RecoveryReport } from './saga-runner.ts';

/** One recovery pass (see {@link RecoverOptions}). */
export async function recover(rt: Runtime, opts: RecoverOptions = {}): Promise<RecoveryReport> {
  const found = await rt.store.findRecoverable({
    now: rt.now(),
    limit: opts.limit ?? 100,
    staleAfterMs: opts.staleAfterMs ?? 0,
    names: opts.names ?? [...rt.registry.keys()],
    ...(opts.maxAttempts === undefined ? {} : { maxAttempts: opts.maxAttempts }),
  });
  const report = { found: found.length, completed: 0, compensated: 0, compensationFailed: 0, skipped: 0 };
  const errors: { sagaId: string; error: unknown }[] = [];
  let next = 0;
  const worker = async () => {
    while (next < found.length) {
      const record = found[next++]!;
      const def = rt.registry.get(record.name);
      try {
        if (def === undefined) throw new UnknownSagaError(record.id, record.name);
        const outcome = await execution(new SagaRun(rt, record.id, def)).done();
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
}
