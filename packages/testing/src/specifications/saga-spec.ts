import { AssertionError } from 'node:assert';
import { createInMemorySagaStore, type Mediator } from '@cqrs-ts/core';
import type { SagaStatus } from '@cqrs-ts/core/spi';
import {
  type AnySagaDefinition,
  type AnyStepSpec,
  createSagaRunner,
  defineSaga,
  type NormalizedStep,
  SagaFailedError,
  type SagaOutcome,
  type StepTools,
  sagaContext,
} from '@cqrs-ts/saga';
import { type ErrorExpectation, expectEqual, expectError } from './assertions.ts';

/** How a step (or its compensation) ends in a specification, instead of running its code. */
export type StepOutcome =
  | { readonly ok: true; readonly result: unknown }
  | { readonly ok: false; readonly error: unknown };

/** The step returns `result` (recorded as its result). */
export const succeeds = (result?: unknown): StepOutcome => ({ ok: true, result });
/** The step throws `error`. */
export const fails = (error: unknown): StepOutcome => ({ ok: false, error });

/**
 * The given outcomes, by step id: one outcome for the act, a list for its successive attempts (the step is
 * retried that many times, without waiting), or `{ act, compensate }` to also decide how its compensation ends.
 * Steps not listed run their own code.
 */
export type GivenSteps = Readonly<
  Record<
    string,
    | StepOutcome
    | readonly StepOutcome[]
    | { readonly act?: StepOutcome | readonly StepOutcome[]; readonly compensate?: StepOutcome }
  >
>;

/** What a saga run ended with, as a specification sees it. */
export interface SagaRun {
  readonly status: SagaStatus;
  /** Results of the completed forward steps, by step id. */
  readonly results: Readonly<Record<string, unknown>>;
  /** Ids of the steps whose act ran (primary or fallback), in order, once per attempt. */
  readonly ran: readonly string[];
  /** Ids of the steps whose compensation completed, in the order they ran. */
  readonly compensated: readonly string[];
  /** Ids of the steps whose compensation failed. */
  readonly compensationFailed: readonly string[];
  /** The step whose failure made the saga compensate, if one failed. */
  readonly failedStep: string | undefined;
  /** The error that made the saga compensate. */
  readonly error: unknown;
  readonly context: unknown;
}

/** Expectations of a saga run; each field given is checked. */
export interface SagaExpectation {
  readonly status?: SagaStatus;
  /** Results of these steps (other steps' results are not checked). */
  readonly results?: Readonly<Record<string, unknown>>;
  /** The compensations that completed, in the order they ran (`[]`: none). */
  readonly compensated?: readonly string[];
  readonly compensationFailed?: readonly string[];
  readonly failedStep?: string;
  readonly error?: ErrorExpectation;
  readonly context?: unknown;
}

/** A saga specification after `given`. */
export interface SagaWhen {
  /** Starts the saga with this context; resolves with what happened (for checks of your own). */
  when(context: unknown): SagaThen;
}

/**
 * Expectations after `when`. Each resolves with the run when it holds and rejects with the difference. (There
 * is no bare `then`: an object with one is a thenable, and `await spec.when(…)` would hang.)
 */
export interface SagaThen {
  /** Checks every field `expected` gives. */
  thenOutcome(expected: SagaExpectation): Promise<SagaRun>;
  /** The saga completed; its steps' results include `results` when given. */
  thenCompleted(results?: Readonly<Record<string, unknown>>): Promise<SagaRun>;
  /** The saga compensated: exactly these compensations completed, in this order, after a failure matching `error`. */
  thenCompensated(compensated: readonly string[], error?: ErrorExpectation): Promise<SagaRun>;
  /** The run as it happened, without checks. */
  run(): Promise<SagaRun>;
}

/** Given/when/then for a saga. */
export interface SagaSpecification extends SagaWhen {
  given(steps: GivenSteps): SagaWhen;
}

/** Options of {@link sagaSpec}. */
export interface SagaSpecOptions {
  /** A mediator for steps that send commands (`tools.send`). */
  readonly mediator?: Mediator;
}

const NO_WAIT = Object.freeze({ initialMs: 0, maxMs: 0, jitter: 'none' as const });

/**
 * Given/when/then tests for a saga, in memory (the real runner over an in-memory saga store): given each step's
 * outcome (or its own code), when the saga starts with a context, then its status, results, the compensations
 * that ran, and the error. Retries do not wait and run only as many attempts as outcomes are given; a failure
 * shows the difference.
 *
 * @example
 * await sagaSpec(Checkout)
 *   .given({ reserve: succeeds({ reservationId: 'r1' }), charge: fails(new PaymentDeclined()) })
 *   .when({ orderId: 'o1' })
 *   .thenCompensated(['reserve'], PaymentDeclined);
 */
export function sagaSpec(definition: AnySagaDefinition, options: SagaSpecOptions = {}): SagaSpecification {
  if (definition?.kind !== 'saga') throw new TypeError('sagaSpec: pass a saga definition (defineSaga)');
  const make = (given: GivenSteps): SagaWhen => ({
    when(context) {
      const run = () => runSaga(definition, given, context, options);
      const check = async (expected: SagaExpectation) => {
        const r = await run();
        const what = `saga ${definition.name}`;
        const actual: Record<string, unknown> = {};
        const wanted: Record<string, unknown> = {};
        if (expected.status !== undefined) {
          actual.status = r.status;
          wanted.status = expected.status;
        }
        if (expected.compensated !== undefined) {
          actual.compensated = r.compensated;
          wanted.compensated = expected.compensated;
        }
        if (expected.compensationFailed !== undefined) {
          actual.compensationFailed = r.compensationFailed;
          wanted.compensationFailed = expected.compensationFailed;
        }
        if (expected.failedStep !== undefined) {
          actual.failedStep = r.failedStep;
          wanted.failedStep = expected.failedStep;
        }
        if (expected.results !== undefined) {
          actual.results = Object.fromEntries(Object.keys(expected.results).map((k) => [k, r.results[k]]));
          wanted.results = expected.results;
        }
        if (expected.context !== undefined) {
          actual.context = r.context;
          wanted.context = expected.context;
        }
        expectEqual(
          actual,
          wanted,
          `${what} did not end as expected (it ran ${r.ran.join(', ') || 'no step'})`,
        );
        if (expected.error !== undefined) {
          if (r.error === undefined) {
            throw new AssertionError({
              message: `${what}: expected a failure, but no step failed`,
              operator: 'throws',
            });
          }
          expectError(r.error, expected.error, `${what} failed with another error`);
        }
        return r;
      };
      return {
        thenOutcome: check,
        thenCompleted: (results) =>
          check(results === undefined ? { status: 'completed' } : { status: 'completed', results }),
        thenCompensated: (compensated, error) =>
          check(
            error === undefined
              ? { status: 'compensated', compensated }
              : { status: 'compensated', compensated, error },
          ),
        run,
      };
    },
  });
  return { ...make({}), given: (steps) => make(steps) };
}

async function runSaga(
  definition: AnySagaDefinition,
  given: GivenSteps,
  context: unknown,
  options: SagaSpecOptions,
): Promise<SagaRun> {
  const ran: string[] = [];
  const compensated: string[] = [];
  const compensationFailed: string[] = [];
  const known = new Set(definition.steps.flatMap((s) => (s.fallback ? [s.id, s.fallback.id] : [s.id])));
  for (const id of Object.keys(given)) {
    if (!known.has(id)) throw new TypeError(`sagaSpec: saga ${definition.name} has no step "${id}"`);
  }
  const respec = (n: NormalizedStep): AnyStepSpec => {
    const g = given[n.id];
    const split =
      g === undefined
        ? {}
        : Array.isArray(g) || 'ok' in (g as object)
          ? { act: g as StepOutcome | readonly StepOutcome[] }
          : (g as { act?: StepOutcome | readonly StepOutcome[]; compensate?: StepOutcome });
    const acts = split.act === undefined ? undefined : Array.isArray(split.act) ? split.act : [split.act];
    let instance:
      | { act(c: unknown, t: StepTools): unknown; compensate?(c: unknown, r: unknown, t: StepTools): unknown }
      | undefined;
    const own = () => (instance ??= new (n.use as unknown as new () => NonNullable<typeof instance>)());
    const realAct = n.act ?? ((c: unknown, t: StepTools) => own().act(c, t));
    const realCompensate =
      n.compensate ??
      (n.compensable ? (c: unknown, r: unknown, t: StepTools) => own().compensate!(c, r, t) : undefined);
    let attempt = 0;
    const act = async (c: unknown, t: StepTools) => {
      ran.push(n.id);
      if (acts === undefined) return realAct(c, t);
      const outcome = acts[Math.min(attempt++, acts.length - 1)]!;
      if (outcome.ok) return outcome.result;
      throw outcome.error;
    };
    const compensateWith = split.compensate;
    const compensate =
      realCompensate === undefined && compensateWith === undefined
        ? undefined
        : async (c: unknown, r: unknown, t: StepTools) => {
            try {
              if (compensateWith === undefined) await realCompensate!(c, r, t);
              else if (!compensateWith.ok) throw compensateWith.error;
              compensated.push(n.id);
            } catch (error) {
              compensationFailed.push(n.id);
              throw error;
            }
          };
    const spec: Record<string, unknown> = {
      id: n.id,
      act,
      retry: {
        ...n.retry,
        maxAttempts: acts === undefined ? (n.retry.maxAttempts ?? 1) : acts.length,
        backoff: NO_WAIT,
      },
      compensationRetry: { ...n.compensationRetry, maxAttempts: 1 },
    };
    if (compensate !== undefined) spec.compensate = compensate;
    if (n.timeoutMs !== undefined) spec.timeoutMs = n.timeoutMs;
    if (n.compensationTimeoutMs !== undefined) spec.compensationTimeoutMs = n.compensationTimeoutMs;
    if (n.fallback !== undefined) {
      const fb = respec(n.fallback) as unknown as Record<string, unknown>;
      if (n.fallback.on !== undefined) fb.on = n.fallback.on;
      spec.fallback = fb;
    }
    return spec as unknown as AnyStepSpec;
  };
  const saga = defineSaga({
    name: definition.name,
    version: definition.version,
    context: definition.schema ?? sagaContext<object>(),
    steps: definition.steps.map(respec),
    ...(definition.deadlineMs === undefined ? {} : { deadlineMs: definition.deadlineMs }),
  });
  const runner = createSagaRunner({
    store: createInMemorySagaStore(),
    random: () => 0,
    ...(options.mediator === undefined ? {} : { mediator: options.mediator }),
  });
  let outcome: SagaOutcome;
  try {
    outcome = (await runner.run(saga, context as object)) as SagaOutcome;
    return {
      status: outcome.status,
      results: outcome.results as Record<string, unknown>,
      ran,
      compensated,
      compensationFailed,
      failedStep: undefined,
      error: undefined,
      context: outcome.context,
    };
  } catch (error) {
    if (!(error instanceof SagaFailedError)) throw error;
    return {
      status: error.status,
      results: {},
      ran,
      compensated,
      compensationFailed,
      failedStep: error.stepId,
      error: error.cause,
      context: error.context,
    };
  }
}
