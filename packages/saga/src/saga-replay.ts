/**
 * Replay of a stored saga (its row and its log) into the state a run continues from. A pure function: no I/O,
 * no clock; it throws {@link SagaCorruptedError} for anything it cannot interpret. @internal
 * @module
 */
import type { SagaLogEntry, SagaRecord, SagaStatus } from '@cqrs-ts/core/spi';
import type { AnySagaDefinition, NormalizedStep } from './define-saga.ts';
import { SagaCorruptedError } from './saga-errors.ts';
import { StoredError } from './saga-storage.ts';

/** A forward step recorded as completed: what ran (the primary or its fallback) and its parsed result. */
export interface CompletedStep {
  readonly step: NormalizedStep;
  readonly result: unknown;
}

/** The state of a stored saga after replaying its log. */
export interface ReplayedSaga {
  /**
   * Where the run goes on: `running` (stored `running` or `paused`), `compensating` (stored `compensating` or
   * `compensation_failed`), or the stored terminal status (`completed`, `compensated`, `failed`).
   */
  readonly status: Extract<SagaStatus, 'running' | 'compensating' | 'completed' | 'compensated' | 'failed'>;
  /** The parsed context. */
  readonly context: unknown;
  /** Forward steps completed so far (index of the next one); equals the number of completed slots. */
  readonly cursor: number;
  /** Completed forward steps by slot. */
  readonly completed: readonly (CompletedStep | undefined)[];
  /** Slots whose compensation is recorded as completed. */
  readonly compensated: ReadonlySet<number>;
  /** Id of the step (the primary's) whose last failed act is logged, if any. */
  readonly failedStep: string | undefined;
  /** The stored error that made the saga compensate or fail, if any. */
  readonly error: StoredError | undefined;
  /** When the first logged compensation attempt started (epoch ms), if any: its retry budget runs from it. */
  readonly compensatingSince: number | undefined;
}

/**
 * Replays a saga's log over its definition.
 * @throws SagaCorruptedError when the context is not JSON, a row names an unknown slot, step, action or status,
 *   a step completed twice, a compensation names a step that did not complete, a result is not JSON, the
 *   completed steps are not a prefix of the definition or disagree with the stored cursor, or the status is
 *   unknown.
 */
export function replaySagaLog(
  def: AnySagaDefinition,
  record: SagaRecord,
  log: readonly SagaLogEntry[],
): ReplayedSaga {
  const id = record.id;
  let context: unknown;
  try {
    context = JSON.parse(record.context);
  } catch (cause) {
    throw new SagaCorruptedError(id, 'context is not valid JSON', { cause });
  }
  const completed: (CompletedStep | undefined)[] = [];
  const compensated = new Set<number>();
  let failedStep: string | undefined;
  let compensatingSince: number | undefined;
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
    if (step === undefined) {
      throw new SagaCorruptedError(id, `log row ${e.seq} names unknown step "${e.stepId}"`);
    }
    if (e.status !== 'completed' && e.status !== 'failed') {
      throw new SagaCorruptedError(id, `log row ${e.seq} has status "${String(e.status)}"`);
    }
    if (e.action === 'act') {
      if (e.status === 'failed') {
        failedStep = slotStep.id;
        continue;
      }
      if (completed[e.slot] !== undefined) {
        throw new SagaCorruptedError(id, `log row ${e.seq}: step "${e.stepId}" completed twice`);
      }
      let result: unknown;
      try {
        result = e.result === null ? undefined : JSON.parse(e.result);
      } catch (cause) {
        throw new SagaCorruptedError(id, `log row ${e.seq}: result is not valid JSON`, { cause });
      }
      completed[e.slot] = { step, result };
    } else if (e.action === 'compensate') {
      if (completed[e.slot]?.step !== step) {
        throw new SagaCorruptedError(
          id,
          `log row ${e.seq}: compensation of "${e.stepId}", which did not complete`,
        );
      }
      if (e.status === 'completed') compensated.add(e.slot);
      if (compensatingSince === undefined || e.startedAt < compensatingSince) compensatingSince = e.startedAt;
    } else {
      throw new SagaCorruptedError(id, `log row ${e.seq} has action "${String(e.action)}"`);
    }
  }
  let done = 0;
  while (completed[done] !== undefined) done++;
  const total = completed.filter((c) => c !== undefined).length;
  if (done !== total || done !== record.cursor) {
    throw new SagaCorruptedError(
      id,
      `cursor ${record.cursor} disagrees with ${total} completed step(s) in the log`,
    );
  }
  let status: ReplayedSaga['status'];
  switch (record.status) {
    case 'running':
    case 'paused':
      status = 'running';
      break;
    case 'compensating':
    case 'compensation_failed':
      status = 'compensating';
      break;
    case 'completed':
    case 'compensated':
    case 'failed':
      status = record.status;
      break;
    default:
      throw new SagaCorruptedError(id, `unknown status "${String(record.status)}"`);
  }
  return {
    status,
    context,
    cursor: record.cursor,
    completed,
    compensated,
    failedStep,
    error: record.error === null ? undefined : new StoredError(record.error),
    compensatingSince,
  };
}
