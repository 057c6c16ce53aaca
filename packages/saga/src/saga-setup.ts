/**
 * Setup of a run: creating a new saga (context checked, stored with its lease) or taking a stored one (lease
 * acquired, log replayed). @internal
 * @module
 */
import { isCqrsError } from '@cqrs-ts/core';
import type { SagaLogEntry, SagaRecord } from '@cqrs-ts/core/spi';
import { toJson } from './define-saga.ts';
import {
  SagaContextError,
  SagaCorruptedError,
  SagaLeaseError,
  SagaNotFoundError,
  SagaStateError,
  UnknownSagaError,
} from './saga-errors.ts';
import { replaySagaLog } from './saga-replay.ts';
import type { SagaRun } from './saga-run.ts';
import { errorJson } from './saga-storage.ts';

/** Creates the saga of a new run, or acquires and replays a stored one. */
export async function initRun(run: SagaRun): Promise<void> {
  if (run.initial !== undefined) return create(run, run.initial.context);
  const rt = run.rt;
  if (run.def === undefined) {
    const stored = await rt.store.load(run.id);
    if (stored === undefined) throw new SagaNotFoundError(run.id);
    const def = rt.registry.get(stored.name);
    if (def === undefined) throw new UnknownSagaError(run.id, stored.name);
    run.def = def;
  }
  const now = rt.now();
  const record = await rt.store.acquire({
    id: run.id,
    owner: rt.owner,
    now,
    leaseMs: rt.leaseMs,
    ...(run.expectedVersion === undefined ? {} : { expectedVersion: run.expectedVersion }),
  });
  if (record === undefined) {
    const exists = await rt.store.load(run.id);
    if (exists === undefined) throw new SagaNotFoundError(run.id);
    if (run.expectedVersion !== undefined && exists.version !== run.expectedVersion) {
      throw new SagaLeaseError(run.id, 'another worker changed the saga since it was listed');
    }
    throw new SagaLeaseError(run.id, `the lease is held by ${exists.leaseOwner ?? 'another worker'}`);
  }
  run.leaseUntil = now + rt.leaseMs;
  if (record.name !== run.def.name) throw new UnknownSagaError(run.id, record.name);
  run.version = record.version;
  run.initialized = true;
  try {
    await rebuild(run, record);
  } catch (error) {
    if (error instanceof SagaCorruptedError) {
      await markFailed(run, record, error);
      run.failure = error;
    }
    throw error;
  }
}

async function create(run: SagaRun, context: unknown): Promise<void> {
  const rt = run.rt;
  const def = run.def!;
  let ctx = context;
  if (def.schema !== undefined) {
    const result = await def.schema['~standard'].validate(ctx);
    if (result.issues !== undefined) {
      const issue = result.issues[0];
      const path = (issue?.path ?? []).map((p) =>
        typeof p === 'object' ? String((p as { key: PropertyKey }).key) : (p as string | number),
      );
      throw new SagaContextError(`is invalid: ${issue?.message ?? 'schema rejected it'}`, path as string[], {
        sagaId: run.id,
      });
    }
    ctx = result.value;
  }
  const json = toJson(ctx, 'context');
  const now = rt.now();
  run.deadlineAt = def.deadlineMs === undefined ? null : now + def.deadlineMs;
  run.leaseUntil = now + rt.leaseMs;
  await rt.store.create({
    id: run.id,
    name: def.name,
    definitionVersion: def.version,
    context: json,
    owner: rt.owner,
    now,
    leaseMs: rt.leaseMs,
    deadlineAt: run.deadlineAt,
  });
  run.ctx = JSON.parse(json);
  run.ctxJson = json;
  run.version = 1;
  run.initialized = true;
  run.initial = undefined;
}

async function markFailed(run: SagaRun, record: SagaRecord, error: unknown): Promise<void> {
  const rt = run.rt;
  run.version = await rt.store.commit({
    id: run.id,
    owner: rt.owner,
    expectedVersion: run.version,
    now: rt.now(),
    status: 'failed',
    context: record.context,
    cursor: record.cursor,
    error: errorJson(error),
    log: [],
    lease: 'release',
  });
}

/** Loads the log and replays it into the run; a terminal saga is released and settled at once. */
async function rebuild(run: SagaRun, record: SagaRecord): Promise<void> {
  const rt = run.rt;
  const id = run.id;
  let log: readonly SagaLogEntry[];
  try {
    log = await rt.store.history(id);
  } catch (cause) {
    // A store that cannot read a log row back (SerializationError) has a corrupted saga, like a bad row here.
    if (isCqrsError(cause, 'CQRS_SERIALIZATION')) {
      throw new SagaCorruptedError(id, 'a log row cannot be read', { cause });
    }
    throw cause;
  }
  const state = replaySagaLog(run.def!, record, log);
  run.deadlineAt = record.deadlineAt;
  run.errorJson = record.error;
  run.forwardError = state.error;
  run.ctx = state.context;
  run.ctxJson = record.context;
  run.failedStep = state.failedStep;
  run.completed = [...state.completed];
  run.compensated = new Set(state.compensated);
  run.cursor = state.cursor;
  run.compensatingSince = state.compensatingSince;
  switch (state.status) {
    case 'running':
      run.status = 'running';
      break;
    case 'compensating':
      run.status = 'compensating';
      run.aborting = true;
      break;
    case 'completed':
    case 'compensated':
      run.status = state.status;
      await rt.store.release({ id, owner: rt.owner, expectedVersion: run.version });
      if (state.status === 'completed') run.outcome = run.makeOutcome();
      else run.failure = run.makeFailure();
      break;
    case 'failed':
      await rt.store.release({ id, owner: rt.owner, expectedVersion: run.version });
      throw new SagaStateError(id, 'failed', 'it needs manual attention (see its error and log)');
  }
}
