import { CqrsError } from '../errors/cqrs-error.ts';

/**
 * A saga store guard did not hold: stale `version`, another lease owner, a missing row, or a duplicate id on
 * `create`. Nothing was written. Code `CQRS_CONCURRENCY`.
 */
export class SagaConflictError extends CqrsError {
  readonly sagaId: string;
  constructor(sagaId: string, message: string) {
    super('CQRS_CONCURRENCY', `saga ${sagaId}: ${message}`);
    this.name = 'SagaConflictError';
    this.sagaId = sagaId;
  }
}
