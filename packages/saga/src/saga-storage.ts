/**
 * Storage of one saga run: log rows, the guarded commit, publishing after the record, and errors as stored
 * text. @internal
 * @module
 */
import { type AnyEvent, isCqrsError } from '@cqrs-ts/core';
import type { SagaLogEntryInput, SagaStatus } from '@cqrs-ts/core/spi';
import type { NormalizedStep } from './define-saga.ts';
import { SagaError, SagaLeaseError } from './saga-errors.ts';
import type { SagaRun } from './saga-run.ts';

/** JSON text of an error for storage (name, code, message; no stack). */
export function errorJson(error: unknown): string {
  if (error instanceof Error) {
    const out: Record<string, unknown> = { name: error.name, message: error.message.slice(0, 2000) };
    if (isCqrsError(error)) out.code = error.code;
    if (error instanceof SagaError) out.reason = error.reason;
    return JSON.stringify(out);
  }
  return JSON.stringify({ name: 'Error', message: String(error).slice(0, 2000) });
}

/** An error read back from storage. */
export class StoredError extends Error {
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

/** A log row of one finished act or compensate. */
export function logRow(
  run: SagaRun,
  step: NormalizedStep,
  row: {
    slot: number;
    action: 'act' | 'compensate';
    status: 'completed' | 'failed';
    attempts: number;
    startedAt: number;
    result?: string;
    error?: string;
  },
): SagaLogEntryInput {
  return {
    stepId: step.id,
    slot: row.slot,
    action: row.action,
    status: row.status,
    attempts: row.attempts,
    result: row.result ?? null,
    error: row.error ?? null,
    startedAt: row.startedAt,
    at: run.rt.now(),
  };
}

/** What one commit writes besides the run's identity, version and error. */
export interface RunCommit {
  readonly status: SagaStatus;
  readonly context: string;
  readonly cursor: number;
  readonly log: SagaLogEntryInput[];
  readonly events: AnyEvent[];
  /**
   * `extend`: keep the lease for another `leaseMs`; `release`: free it (the saga ended or waits for an operator);
   * `{ retryAt }`: free it with a retry time for recovery.
   */
  readonly lease: 'extend' | 'release' | { readonly retryAt: number };
}

/**
 * Writes the run's new state guarded by its version and lease. A refused guard means another worker took the
 * saga over: the run closes and a SagaLeaseError is thrown.
 */
export async function commitRun(run: SagaRun, write: RunCommit): Promise<void> {
  const rt = run.rt;
  if (run.leaseLost !== undefined) throw run.leaseLost;
  const staged = rt.outbox === true && write.events.length > 0;
  const now = rt.now();
  try {
    run.version = await rt.store.commit({
      id: run.id,
      owner: rt.owner,
      expectedVersion: run.version,
      now,
      status: write.status,
      context: write.context,
      cursor: write.cursor,
      error: run.errorJson,
      log: write.log,
      ...(staged ? { events: write.events } : {}),
      lease: write.lease === 'extend' ? rt.leaseMs : write.lease,
    });
  } catch (error) {
    if (isCqrsError(error, 'CQRS_CONCURRENCY')) {
      run.closed = true;
      throw new SagaLeaseError(run.id, 'another worker took the saga over; this run stops', {
        cause: error,
      });
    }
    throw error;
  }
  run.ctxJson = write.context;
  run.leaseUntil = write.lease === 'extend' ? now + rt.leaseMs : 0;
}

/** Hands a recorded step's events to the outbox function or the mediator (not staged: `outbox` is not `true`). */
export async function publishAfter(run: SagaRun, events: AnyEvent[]): Promise<void> {
  const rt = run.rt;
  if (events.length === 0 || rt.outbox === true) return;
  try {
    if (typeof rt.outbox === 'function') await rt.outbox(events);
    else for (const event of events) await rt.mediator!.publish(event);
  } catch (error) {
    rt.onError(error, { sagaId: run.id, phase: 'publish' });
  }
}
