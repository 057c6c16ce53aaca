/**
 * Recovery: a pass over interrupted sagas (running or compensating, lease free or expired), each taken with
 * its lease and run to its end. One bad saga never stops the others. @internal
 * @module
 */
import { ConfigurationError } from '@cqrs-ts/core';
import { createHeartbeat, errorText } from '@cqrs-ts/core/spi';
import { SagaFailedError, SagaLeaseError, UnknownSagaError } from './saga-errors.ts';
import { execution, type Runtime, SagaRun } from './saga-run.ts';
import type {
  RecoverOptions,
  RecoveryAgentOptions,
  RecoveryReport,
  SagaHealth,
  SagaRecoveryAgent,
} from './saga-runner.ts';

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

/** A recovery pass every `intervalMs` until stopped, with a heartbeat per pass. */
export function startRecovery(rt: Runtime, opts: RecoveryAgentOptions = {}): SagaRecoveryAgent {
  const intervalMs = opts.intervalMs ?? 5000;
  if (!Number.isFinite(intervalMs) || intervalMs < 1)
    throw new ConfigurationError('startRecovery: intervalMs must be >= 1');
  const limit = opts.limit ?? 100;
  const beat = createHeartbeat(intervalMs, rt.now);
  let running = true;
  let lastReport: RecoveryReport | undefined;
  let lastError: string | undefined;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let wakeUp: (() => void) | undefined;
  const pause = (ms: number) =>
    new Promise<void>((resolve) => {
      wakeUp = resolve;
      timer = setTimeout(resolve, ms);
    });
  beat.running(true);
  const loop = (async () => {
    while (running) {
      let wait = intervalMs;
      beat.cycle();
      try {
        lastReport = await recover(rt, opts);
        if (lastReport.found >= limit) wait = 0;
      } catch (error) {
        lastError = errorText(error);
        rt.onError(error, { sagaId: '', phase: 'recover' });
      }
      beat.beat(wait);
      if (running && wait > 0) await pause(wait);
    }
  })();
  const agent: SagaRecoveryAgent = {
    heartbeat: beat.read,
    get lastReport() {
      return lastReport;
    },
    get lastError() {
      return lastError;
    },
    async stop() {
      running = false;
      beat.running(false);
      clearTimeout(timer);
      wakeUp?.();
      await loop;
    },
    [Symbol.asyncDispose]: () => agent.stop(),
  };
  return agent;
}
