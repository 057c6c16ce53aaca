/**
 * @cqrs-ts/saga: orchestrated sagas with compensation, persistence, crash recovery, fallbacks and a circuit
 * breaker. Storage is the `SagaStore` port of `@cqrs-ts/core`.
 * @packageDocumentation
 */
export type {
  CircuitBreaker,
  CircuitBreakerOptions,
  CircuitStateStore,
  CircuitStatus,
} from './circuit-breaker.ts';
export { createCircuitBreaker, createInMemoryCircuitStateStore } from './circuit-breaker.ts';
export type {
  AnySagaDefinition,
  AnyStepSpec,
  FallbackSpec,
  InferSagaContext,
  InferStepResult,
  NormalizedStep,
  SagaContextType,
  SagaDefinition,
  SagaOptions,
  StepClass,
  StepImplementation,
  StepRetryOptions,
  StepSpec,
  StepTools,
} from './define-saga.ts';
export { defineSaga, sagaContext, step, toJson } from './define-saga.ts';
export type { RedisCircuitClient, RedisCircuitStateStoreOptions } from './redis-breaker-store.ts';
export { createRedisCircuitStateStore } from './redis-breaker-store.ts';
export { sagaClassDiagram, sagaLogSequenceDiagram, sagaSequenceDiagram } from './saga-diagrams.ts';
export type { CompensationFailure, SagaErrorReason } from './saga-errors.ts';
export {
  CircuitOpenError,
  SagaAbortedError,
  SagaContextError,
  SagaCorruptedError,
  SagaDeadlineError,
  SagaDefinitionError,
  SagaError,
  SagaFailedError,
  SagaLeaseError,
  SagaNotFoundError,
  SagaStateError,
  UnknownSagaError,
} from './saga-errors.ts';
export type {
  CompensationPolicy,
  RecoverOptions,
  RecoveryAgentOptions,
  RecoveryReport,
  SagaActUpdate,
  SagaCompensateUpdate,
  SagaErrorInfo,
  SagaExecution,
  SagaHealth,
  SagaOutcome,
  SagaRecoveryAgent,
  SagaResults,
  SagaRunner,
  SagaRunnerOptions,
  SagaUpdate,
  StepResolver,
} from './saga-runner.ts';
export { createSagaRunner } from './saga-runner.ts';
export type {
  SagaProgress,
  SagaStateProgress,
  SagaStepProgress,
  SagaWatchOptions,
} from './saga-watch.ts';
