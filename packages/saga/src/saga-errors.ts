import { CqrsError } from '@cqrs-ts/core';
import type { SagaStatus } from '@cqrs-ts/core/spi';

/** Why a {@link SagaError} was raised. Stable, part of the public API. */
export type SagaErrorReason =
  | 'definition'
  | 'context'
  | 'failed'
  | 'aborted'
  | 'deadline'
  | 'unknown-saga'
  | 'not-found'
  | 'corrupted'
  | 'lease'
  | 'state';

/** Base class of saga errors; code `CQRS_SAGA`, with a `reason` to branch on. */
export class SagaError extends CqrsError {
  readonly reason: SagaErrorReason;
  readonly sagaId: string | undefined;
  constructor(
    reason: SagaErrorReason,
    message: string,
    options?: { cause?: unknown; sagaId?: string | undefined },
  ) {
    super('CQRS_SAGA', message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'SagaError';
    this.reason = reason;
    this.sagaId = options?.sagaId;
  }
}

/** A saga definition is invalid (duplicate step ids, nested fallback, bad options). Raised by `defineSaga`. */
export class SagaDefinitionError extends SagaError {
  readonly sagaName: string;
  constructor(sagaName: string, message: string) {
    super('definition', `saga "${sagaName}": ${message}`);
    this.name = 'SagaDefinitionError';
    this.sagaName = sagaName;
  }
}

/** A context does not serialize to JSON faithfully, or fails the saga's schema. Nothing was stored. */
export class SagaContextError extends SagaError {
  /** Path of the offending value, e.g. `['items', 0, 'at']`; empty for the whole context. */
  readonly path: readonly (string | number)[];
  constructor(message: string, path: readonly (string | number)[] = [], options?: { sagaId?: string }) {
    super('context', `saga context ${path.length > 0 ? `at ${path.join('.')} ` : ''}${message}`, options);
    this.name = 'SagaContextError';
    this.path = Object.freeze([...path]);
  }
}

/** One compensation that kept failing. */
export interface CompensationFailure {
  readonly stepId: string;
  readonly error: unknown;
}

/**
 * A saga did not complete. `cause` is the original forward error (the failed step's, or a
 * {@link SagaAbortedError} / {@link SagaDeadlineError}); `compensationFailures` lists compensations that kept
 * failing. `status` is `compensated` (rolled back cleanly) or `compensation_failed`: recovery retries it from
 * `retryAt`, or, when that is `undefined`, it needs an operator.
 */
export class SagaFailedError extends SagaError {
  readonly status: SagaStatus;
  /** Id of the step whose failure started the compensation, if a step failed. */
  readonly stepId: string | undefined;
  readonly compensationFailures: readonly CompensationFailure[];
  /** Final context (restored to its state before the failed step, then changed by compensations). */
  readonly context: unknown;
  /**
   * For `compensation_failed`: when recovery takes the saga again (epoch ms); `undefined` when no retry is left
   * (its budget is spent or its error is not retried) and an operator must resume it.
   */
  readonly retryAt: number | undefined;
  constructor(init: {
    sagaId: string;
    sagaName: string;
    status: SagaStatus;
    stepId: string | undefined;
    cause: unknown;
    compensationFailures: readonly CompensationFailure[];
    context: unknown;
    retryAt?: number | undefined;
  }) {
    const why = init.cause instanceof Error ? init.cause.message : String(init.cause);
    const at = init.stepId === undefined ? '' : ` at step "${init.stepId}"`;
    const comp =
      init.compensationFailures.length === 0
        ? ''
        : `; ${init.compensationFailures.length} compensation(s) failed: ${init.compensationFailures.map((f) => f.stepId).join(', ')}`;
    super('failed', `saga "${init.sagaName}" ${init.sagaId} ${init.status}${at}: ${why}${comp}`, {
      cause: init.cause,
      sagaId: init.sagaId,
    });
    this.name = 'SagaFailedError';
    this.status = init.status;
    this.stepId = init.stepId;
    this.compensationFailures = Object.freeze([...init.compensationFailures]);
    this.context = init.context;
    this.retryAt = init.retryAt;
  }
}

/** The saga was aborted with `execution.abort()`; it compensates. */
export class SagaAbortedError extends SagaError {
  constructor(sagaId: string, reason?: unknown) {
    super('aborted', `saga ${sagaId} was aborted`, { cause: reason, sagaId });
    this.name = 'SagaAbortedError';
  }
}

/** The saga passed its deadline; it compensates. */
export class SagaDeadlineError extends SagaError {
  readonly deadlineAt: number;
  constructor(sagaId: string, deadlineAt: number) {
    super('deadline', `saga ${sagaId} passed its deadline (${new Date(deadlineAt).toISOString()})`, {
      sagaId,
    });
    this.name = 'SagaDeadlineError';
    this.deadlineAt = deadlineAt;
  }
}

/** Storage names a saga this runner does not know. The row is left untouched. */
export class UnknownSagaError extends SagaError {
  readonly sagaName: string;
  constructor(sagaId: string, sagaName: string) {
    super('unknown-saga', `saga ${sagaId} names an unknown saga "${sagaName.slice(0, 200)}"`, { sagaId });
    this.name = 'UnknownSagaError';
    this.sagaName = sagaName;
  }
}

/** No saga with this id is stored. */
export class SagaNotFoundError extends SagaError {
  constructor(sagaId: string) {
    super('not-found', `saga ${sagaId} not found`, { sagaId });
    this.name = 'SagaNotFoundError';
  }
}

/**
 * The stored state of a saga cannot be interpreted (context or log row not valid JSON, unknown step id, slot or
 * action). The runner marks the saga `failed` (needs attention) and never runs it again by itself.
 */
export class SagaCorruptedError extends SagaError {
  constructor(sagaId: string, message: string, options?: { cause?: unknown }) {
    super('corrupted', `saga ${sagaId} has corrupted state: ${message}`, { sagaId, cause: options?.cause });
    this.name = 'SagaCorruptedError';
  }
}

/** Another worker holds the saga's lease, or this worker lost it (another one took over). */
export class SagaLeaseError extends SagaError {
  constructor(sagaId: string, message: string, options?: { cause?: unknown }) {
    super('lease', `saga ${sagaId}: ${message}`, { sagaId, cause: options?.cause });
    this.name = 'SagaLeaseError';
  }
}

/** The saga is in a state that does not allow the operation (e.g. resuming a `failed` saga). */
export class SagaStateError extends SagaError {
  readonly status: SagaStatus;
  constructor(sagaId: string, status: SagaStatus, message: string) {
    super('state', `saga ${sagaId} is ${status}: ${message}`, { sagaId });
    this.name = 'SagaStateError';
    this.status = status;
  }
}

/** A circuit breaker is open; the guarded call was not made. Code `CQRS_CIRCUIT_OPEN`. */
export class CircuitOpenError extends CqrsError {
  readonly key: string;
  constructor(key: string, options?: { cause?: unknown }) {
    super('CQRS_CIRCUIT_OPEN', `circuit "${key}" is open`, options);
    this.name = 'CircuitOpenError';
    this.key = key;
  }
}
