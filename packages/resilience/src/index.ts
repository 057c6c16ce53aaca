/**
 * @cqrs-ts/resilience: resilience behaviors for the cqrs-ts mediator, on cockatiel.
 * @packageDocumentation
 */

export type {
  BreakerRule,
  CircuitBreakerBehavior,
  CircuitBreakerOptions,
  CircuitSettings,
  CircuitStateName,
  CircuitStatus,
} from './circuit-breaker-behavior.ts';
export { circuitBreaker } from './circuit-breaker-behavior.ts';
