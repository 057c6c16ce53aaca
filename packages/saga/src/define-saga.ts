import type {
  AnyCommand,
  AnyEvent,
  BackoffOptions,
  InferResult,
  Mediator,
  StandardSchemaV1,
} from '@cqrs-ts/core';
import type { CircuitBreaker } from './circuit-breaker.ts';
import { SagaContextError, SagaDefinitionError } from './saga-errors.ts';

/** Retry policy of a step's act or compensate. */
export interface StepRetryOptions {
  /** Total attempts including the first; `1` disables retries. @default 1 for act, 3 for compensate */
  readonly maxAttempts?: number;
  /** Exponential backoff with jitter. @default act `{ initialMs: 100, factor: 2, maxMs: 10_000, jitter: 'full' }`, compensate `{ initialMs: 1000, factor: 2, maxMs: 30_000, jitter: 'full' }` */
  readonly backoff?: BackoffOptions;
  /** Which errors are retried. @default every error except validation, authorization, cancellation, open circuits, aborts and deadlines */
  readonly retryOn?: (error: unknown) => boolean;
}

/** What a step's `act` and `compensate` receive besides the context. */
export interface StepTools {
  readonly sagaId: string;
  readonly sagaName: string;
  /** Id of the step running (a fallback's own id when the fallback runs). */
  readonly stepId: string;
  /** 1 for the first attempt. */
  readonly attempt: number;
  /** Aborted on timeout, deadline, `abort()` or a lost lease. Pass it to I/O. */
  readonly signal: AbortSignal;
  /**
   * A key stable across attempts, retries and recoveries of this step of this saga instance:
   * `<sagaId>:<stepId>[:<scope>]` (compensations add `:compensate`). Give it to downstream services to make the
   * step idempotent over the at-least-once window.
   */
  idempotencyKey(scope?: string): string;
  /** Sends a command through the runner's mediator (same signal). Throws ConfigurationError without one. */
  send<TCommand extends AnyCommand>(command: TCommand): Promise<InferResult<TCommand>>;
  /**
   * Records events to publish once the step is recorded as done: staged in the outbox in the same transaction
   * as the step record when the runner has `outbox: true`, else handed to `outbox(events)` or published through
   * the mediator after the record. Events of a failed attempt are discarded.
   */
  publish(...events: readonly AnyEvent[]): void;
  /** The runner's mediator, if any. */
  readonly mediator: Mediator | undefined;
}

/** The act/compensate pair of a step, as an object or a class resolved once per run. */
export interface StepImplementation<TCtx, TResult> {
  /** Does the work; may mutate `ctx`; its result is recorded (must serialize to JSON). */
  act(ctx: TCtx, tools: StepTools): TResult | Promise<TResult>;
  /** Undoes `act`, given the result it recorded. Must be idempotent (it may run again after a crash). */
  compensate?(ctx: TCtx, result: TResult, tools: StepTools): void | Promise<void>;
}

/** A step class; instances are created by the runner's resolver once per step and run (events come from it). */
export type StepClass<TCtx, TResult> = abstract new (...args: never[]) => StepImplementation<TCtx, TResult>;

interface StepPolicy {
  /** Retries of `act`. */
  readonly retry?: StepRetryOptions;
  /** Time budget per attempt of `act`, in ms; the signal aborts and the attempt fails with a TimeoutError. */
  readonly timeoutMs?: number;
  /** Retries of `compensate`. */
  readonly compensationRetry?: StepRetryOptions;
  /** Time budget per attempt of `compensate`, in ms. */
  readonly compensationTimeoutMs?: number;
  /** Shown in diagrams. */
  readonly description?: string;
}

type StepBody<TCtx, TResult> =
  | {
      act(ctx: TCtx, tools: StepTools): TResult | Promise<TResult>;
      compensate?(ctx: TCtx, result: TResult, tools: StepTools): void | Promise<void>;
      readonly use?: never;
    }
  | { readonly use: StepClass<TCtx, TResult>; readonly act?: never; readonly compensate?: never };

/** An alternative run when the primary step fails (or its circuit is open). Same result type; no nested fallback. */
export type FallbackSpec<TCtx, TResult> = StepPolicy &
  StepBody<TCtx, TResult> & {
    /** Stable, unique id (logged when the fallback runs). */
    readonly id: string;
    /** Which primary errors trigger the fallback. @default every error except aborts and deadlines */
    readonly on?: (error: unknown) => boolean;
    readonly fallback?: never;
  };

/** A step of a saga. */
export type StepSpec<TCtx, TResult, TId extends string = string> = StepPolicy &
  StepBody<TCtx, TResult> & {
    /** Stable, unique id (stored in the log; never rename a step of a deployed saga). */
    readonly id: TId;
    readonly fallback?: FallbackSpec<TCtx, TResult>;
    /**
     * Guards the primary `act` with a circuit breaker keyed `<saga>/<step id>` (or `key`). While open the primary
     * is skipped: the fallback runs, or the step fails with a CircuitOpenError. `true` uses the runner's breaker.
     */
    readonly circuitBreaker?: boolean | { readonly key?: string; readonly breaker?: CircuitBreaker };
  };

/** Any step over `TCtx` (results not tracked). */
// biome-ignore lint/suspicious/noExplicitAny: result types vary per step; each is recovered with InferStepResult.
export type AnyStepSpec<TCtx = any> = StepSpec<TCtx, any, string>;

/** The recorded result type of a step spec. */
export type InferStepResult<TStep> = TStep extends { act(...args: never[]): infer R }
  ? Awaited<R>
  : TStep extends { use: abstract new (...args: never[]) => { act(...args: never[]): infer R } }
    ? Awaited<R>
    : unknown;

/**
 * Declares a step with its result type inferred from `act`, so `compensate` receives it typed. Returns `spec`.
 * Annotate `act`'s context parameter (or use `sagaContext<T>().step`, which fixes the context type).
 * @example step({ id: 'charge', act: async (ctx) => ({ paymentId: 'p1' }), compensate: async (ctx, r) => refund(r.paymentId) })
 */
export function step<TCtx, TResult, const TId extends string>(
  spec: StepSpec<TCtx, TResult, TId>,
): StepSpec<TCtx, TResult, TId> {
  return spec;
}

/** Type-only declaration of a saga's context type (when there is no schema), with a step helper bound to it. */
export interface SagaContextType<TCtx> {
  readonly '~context'?: TCtx;
  /** {@link step} with the context type fixed, so `act`'s and `compensate`'s parameters need no annotation. */
  step<TResult, const TId extends string>(spec: StepSpec<TCtx, TResult, TId>): StepSpec<TCtx, TResult, TId>;
}

const CONTEXT_TYPE = Object.freeze({ step: <T>(spec: T): T => spec });

/**
 * Declares the context type of a saga without a schema: `const Ctx = sagaContext<OrderContext>()`, then
 * `defineSaga({ context: Ctx, steps: [Ctx.step({ ... })] })`.
 */
export function sagaContext<TCtx extends object>(): SagaContextType<TCtx> {
  return CONTEXT_TYPE as unknown as SagaContextType<TCtx>;
}

/** Options of {@link defineSaga}. */
export interface SagaOptions<TCtx, TSteps extends readonly AnyStepSpec<TCtx>[]> {
  /** Stable name, stored with every instance. */
  readonly name: string;
  /** Definition version, stored with every instance. @default 1 */
  readonly version?: number;
  readonly description?: string;
  /** A Standard Schema (Zod, Valibot, ArkType...) validating the context at start, or `sagaContext<T>()`. */
  readonly context: StandardSchemaV1<unknown, TCtx> | SagaContextType<TCtx>;
  /** Ordered steps; ids unique across steps and fallbacks. */
  readonly steps: TSteps;
  /** Per-saga deadline from start, in ms: past it the saga compensates. */
  readonly deadlineMs?: number;
}

/** @internal A step with defaults applied. */
export interface NormalizedStep {
  readonly id: string;
  readonly slot: number;
  readonly description: string | undefined;
  readonly act: ((ctx: unknown, tools: StepTools) => unknown) | undefined;
  readonly compensate: ((ctx: unknown, result: unknown, tools: StepTools) => unknown) | undefined;
  readonly use: StepClass<unknown, unknown> | undefined;
  /** True when the step declares a compensation (for classes: its prototype has `compensate`). */
  readonly compensable: boolean;
  readonly retry: StepRetryOptions;
  readonly timeoutMs: number | undefined;
  readonly compensationRetry: StepRetryOptions;
  readonly compensationTimeoutMs: number | undefined;
  readonly fallback:
    | (NormalizedStep & { readonly on: ((error: unknown) => boolean) | undefined })
    | undefined;
  /** Circuit key and optional breaker when the primary is guarded. */
  readonly circuit: { readonly key: string; readonly breaker: CircuitBreaker | undefined } | undefined;
}

/** A validated saga definition. Immutable; pass it to a runner. */
export interface SagaDefinition<
  TCtx = unknown,
  TSteps extends readonly AnyStepSpec<TCtx>[] = readonly AnyStepSpec<TCtx>[],
> {
  readonly kind: 'saga';
  readonly name: string;
  readonly version: number;
  readonly description: string | undefined;
  readonly deadlineMs: number | undefined;
  readonly schema: StandardSchemaV1 | undefined;
  /** Steps with defaults applied, in order. */
  readonly steps: readonly NormalizedStep[];
  /** Type carrier; never set at run time. */
  readonly '~types'?: { readonly context: TCtx; readonly steps: TSteps };
}

/** Any saga definition. */
// biome-ignore lint/suspicious/noExplicitAny: erases the context and step types.
export type AnySagaDefinition = SagaDefinition<any, readonly AnyStepSpec<any>[]>;

/** The context type of a saga definition. */
export type InferSagaContext<TSaga> = TSaga extends SagaDefinition<infer C, infer _S> ? C : never;

const ID_RE = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/;

function checkRetry(sagaName: string, where: string, retry: StepRetryOptions | undefined): void {
  if (retry === undefined) return;
  const n = retry.maxAttempts;
  if (n !== undefined && (!Number.isInteger(n) || n < 1)) {
    throw new SagaDefinitionError(sagaName, `${where}: maxAttempts must be an integer >= 1`);
  }
  if (retry.retryOn !== undefined && typeof retry.retryOn !== 'function') {
    throw new SagaDefinitionError(sagaName, `${where}: retryOn must be a function`);
  }
}

function checkMs(sagaName: string, where: string, ms: number | undefined): void {
  if (ms !== undefined && !(Number.isFinite(ms) && ms > 0)) {
    throw new SagaDefinitionError(sagaName, `${where} must be a positive number of ms`);
  }
}

type RawStep = Record<string, unknown> & { id?: unknown };

function normalize(sagaName: string, raw: RawStep, slot: number, isFallback: boolean): NormalizedStep {
  if (typeof raw !== 'object' || raw === null) {
    throw new SagaDefinitionError(sagaName, `step ${slot} must be an object`);
  }
  const id = raw.id;
  if (typeof id !== 'string' || !ID_RE.test(id)) {
    throw new SagaDefinitionError(
      sagaName,
      `step ${slot}${isFallback ? ' fallback' : ''}: id must match ${ID_RE} (got ${JSON.stringify(id)?.slice(0, 80)})`,
    );
  }
  const act = raw.act;
  const compensate = raw.compensate;
  const use = raw.use;
  if (use !== undefined) {
    if (typeof use !== 'function')
      throw new SagaDefinitionError(sagaName, `step "${id}": use must be a class`);
    if (act !== undefined || compensate !== undefined) {
      throw new SagaDefinitionError(sagaName, `step "${id}": give either use or act/compensate, not both`);
    }
    if (typeof (use as { prototype?: { act?: unknown } }).prototype?.act !== 'function') {
      throw new SagaDefinitionError(sagaName, `step "${id}": class ${use.name || '?'} has no act method`);
    }
  } else {
    if (typeof act !== 'function')
      throw new SagaDefinitionError(sagaName, `step "${id}": act must be a function`);
    if (compensate !== undefined && typeof compensate !== 'function') {
      throw new SagaDefinitionError(sagaName, `step "${id}": compensate must be a function`);
    }
  }
  if (isFallback && raw.fallback !== undefined) {
    throw new SagaDefinitionError(sagaName, `step "${id}": a fallback cannot have its own fallback`);
  }
  if (isFallback && raw.circuitBreaker !== undefined) {
    throw new SagaDefinitionError(
      sagaName,
      `step "${id}": the circuit breaker guards the primary, not the fallback`,
    );
  }
  checkRetry(sagaName, `step "${id}" retry`, raw.retry as StepRetryOptions | undefined);
  checkRetry(
    sagaName,
    `step "${id}" compensationRetry`,
    raw.compensationRetry as StepRetryOptions | undefined,
  );
  checkMs(sagaName, `step "${id}" timeoutMs`, raw.timeoutMs as number | undefined);
  checkMs(sagaName, `step "${id}" compensationTimeoutMs`, raw.compensationTimeoutMs as number | undefined);
  if (raw.on !== undefined && (!isFallback || typeof raw.on !== 'function')) {
    throw new SagaDefinitionError(sagaName, `step "${id}": on is a function of a fallback`);
  }
  let fallback: NormalizedStep['fallback'];
  if (raw.fallback !== undefined) {
    const fb = normalize(sagaName, raw.fallback as RawStep, slot, true);
    fallback = Object.freeze({ ...fb, on: (raw.fallback as { on?: (e: unknown) => boolean }).on });
  }
  let circuit: NormalizedStep['circuit'];
  const cb = raw.circuitBreaker as StepSpec<unknown, unknown>['circuitBreaker'];
  if (cb !== undefined && cb !== false) {
    const opts = cb === true ? {} : cb;
    if (typeof opts !== 'object' || opts === null) {
      throw new SagaDefinitionError(sagaName, `step "${id}": circuitBreaker must be true or an object`);
    }
    circuit = Object.freeze({ key: opts.key ?? `${sagaName}/${id}`, breaker: opts.breaker });
  }
  const useClass = use as StepClass<unknown, unknown> | undefined;
  return Object.freeze({
    id,
    slot,
    description: typeof raw.description === 'string' ? raw.description : undefined,
    act: act as NormalizedStep['act'],
    compensate: compensate as NormalizedStep['compensate'],
    use: useClass,
    compensable:
      typeof compensate === 'function' ||
      typeof (useClass?.prototype as { compensate?: unknown } | undefined)?.compensate === 'function',
    retry: (raw.retry as StepRetryOptions | undefined) ?? {},
    timeoutMs: raw.timeoutMs as number | undefined,
    compensationRetry: (raw.compensationRetry as StepRetryOptions | undefined) ?? {},
    compensationTimeoutMs: raw.compensationTimeoutMs as number | undefined,
    fallback,
    circuit,
  });
}

/**
 * Defines a saga: an ordered list of steps over a typed, JSON-serializable context. Validated now: name and
 * step ids (stable, unique across steps and fallbacks), act/compensate/use shapes, no nested fallback, retry and
 * timeout options, the context schema. The context itself is checked at start (schema, then JSON fidelity).
 *
 * @throws SagaDefinitionError (`CQRS_SAGA`, reason `definition`)
 * @example
 * const PlaceOrder = defineSaga({
 *   name: 'place-order',
 *   context: sagaContext<{ orderId: string; reservationId?: string }>(),
 *   steps: [
 *     step({ id: 'reserve', act: async (ctx) => ({ reservationId: 'r1' }), compensate: async (ctx, r) => release(r.reservationId) }),
 *     step({ id: 'charge', act: async (ctx) => charge(ctx.orderId) }),
 *   ],
 * });
 */
export function defineSaga<TCtx, const TSteps extends readonly AnyStepSpec<TCtx>[]>(
  options: SagaOptions<TCtx, TSteps>,
): SagaDefinition<TCtx, TSteps> {
  const name = options?.name;
  if (typeof name !== 'string' || !ID_RE.test(name)) {
    throw new SagaDefinitionError(String(name), `name must match ${ID_RE}`);
  }
  const version = options.version ?? 1;
  if (!Number.isInteger(version) || version < 1) {
    throw new SagaDefinitionError(name, 'version must be an integer >= 1');
  }
  if (!Array.isArray(options.steps) || options.steps.length === 0) {
    throw new SagaDefinitionError(name, 'steps must be a non-empty array');
  }
  checkMs(name, 'deadlineMs', options.deadlineMs);
  const ctx = options.context as { '~standard'?: { validate?: unknown } } | undefined;
  if (typeof ctx !== 'object' || ctx === null) {
    throw new SagaDefinitionError(name, 'context must be a Standard Schema or sagaContext<T>()');
  }
  const schema = ctx['~standard'] === undefined ? undefined : (ctx as StandardSchemaV1);
  if (schema !== undefined && typeof schema['~standard'].validate !== 'function') {
    throw new SagaDefinitionError(name, 'context schema must implement Standard Schema v1');
  }
  const steps = (options.steps as readonly RawStep[]).map((s, i) => normalize(name, s, i, false));
  const seen = new Set<string>();
  for (const s of steps) {
    for (const id of s.fallback ? [s.id, s.fallback.id] : [s.id]) {
      if (seen.has(id)) throw new SagaDefinitionError(name, `duplicate step id "${id}"`);
      seen.add(id);
    }
  }
  return Object.freeze({
    kind: 'saga' as const,
    name,
    version,
    description: options.description,
    deadlineMs: options.deadlineMs,
    schema,
    steps: Object.freeze(steps),
  });
}

/**
 * Serializes a context or result to JSON, refusing what JSON would silently change: functions, symbols,
 * bigints, `undefined` array items, non-finite numbers, cycles, and objects other than plain objects and arrays
 * (Date, Map, Set, class instances).
 * @throws SagaContextError with the path of the first offending value
 */
export function toJson(value: unknown, what = 'value'): string {
  const problem = findProblem(value, 0);
  if (problem !== undefined) throw new SagaContextError(`${what} ${problem.message}`, problem.path.reverse());
  try {
    return JSON.stringify(value) ?? 'null';
  } catch (error) {
    throw new SagaContextError(`${what} does not serialize: ${(error as Error).message}`);
  }
}

type Problem = { message: string; path: (string | number)[] };

/** The first value JSON would not keep faithfully; its path is built in reverse on the way out (no allocation on success). */
function findProblem(v: unknown, depth: number): Problem | undefined {
  switch (typeof v) {
    case 'string':
    case 'boolean':
    case 'undefined':
      return undefined;
    case 'number':
      return Number.isFinite(v) ? undefined : { message: `holds ${v}, which JSON cannot keep`, path: [] };
    case 'object': {
      if (v === null) return undefined;
      if (depth > 64) return { message: 'is nested more than 64 levels (or cyclic)', path: [] };
      if (Array.isArray(v)) {
        for (let i = 0; i < v.length; i++) {
          const item: unknown = v[i];
          const p =
            item === undefined
              ? { message: 'holds undefined in an array', path: [] }
              : findProblem(item, depth + 1);
          if (p !== undefined) {
            p.path.push(i);
            return p;
          }
        }
        return undefined;
      }
      const proto = Object.getPrototypeOf(v);
      if (proto !== Object.prototype && proto !== null) {
        const kind = (v as object).constructor?.name ?? 'object';
        return { message: `holds a ${kind}, which does not round-trip through JSON`, path: [] };
      }
      for (const k in v) {
        const p = findProblem((v as Record<string, unknown>)[k], depth + 1);
        if (p !== undefined) {
          p.path.push(k);
          return p;
        }
      }
      return undefined;
    }
    default:
      return { message: `holds a ${typeof v}, which JSON cannot keep`, path: [] };
  }
}
