/**
 * `@cqrs-ts/testing/saga`: given/when/then specifications for sagas of `@cqrs-ts/saga` (an optional peer
 * dependency: this entry needs it, the others do not).
 * @module
 */
export type {
  GivenSteps,
  SagaExpectation,
  SagaRun,
  SagaSpecification,
  SagaSpecOptions,
  SagaThen,
  SagaWhen,
  StepOutcome,
} from './specifications/saga-spec.ts';
export { fails, sagaSpec, succeeds } from './specifications/saga-spec.ts';
