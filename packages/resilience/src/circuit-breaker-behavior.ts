import type { Behavior, BehaviorTarget, HandlerDescriptor, Middleware } from '@cqrs-ts/core';
import { CircuitOpenError, ConfigurationError, isRetryable } from '@cqrs-ts/core';
import {
  BrokenCircuitError,
  type CircuitBreakerPolicy,
  CircuitState,
  ConsecutiveBreaker,
  CountBreaker,
  circuitBreaker as cockatielBreaker,
  handleWhen,
  type IBreaker,
  IsolatedCircuitError,
} from 'cockatiel';

/** The state of one circuit. */
export type CircuitStateName = 'closed' | 'open' | 'half-open' | 'isolated';

/** What {@link CircuitBreakerBehavior.status} reports about one circuit. */
export interface CircuitStatus {
  /** The dependency's name (`circuit: 'payments-api'`), or `<message type>:<handler>` for `circuit: true`. */
  readonly circuit: string;
  readonly state: CircuitStateName;
  /** Epoch ms from which a trial call is let through; set while the circuit is open. */
  readonly retryAt: number | undefined;
  /** The error that opened the circuit last, if it ever opened. */
  readonly lastFailure: unknown;
}

/** When a circuit opens: after consecutive failures, or when too many of the last calls failed. */
export type BreakerRule =
  | { readonly consecutiveFailures: number }
  | {
      /** The circuit opens when more than this share (between 0 and 1, both excluded) of the calls failed. */
      readonly failureRatio: number;
      /** How many of the last calls the ratio is taken over. */
      readonly window: number;
      /** Calls needed in the window before the ratio counts. @default window */
      readonly minimumCalls?: number;
    };

/** Settings of one circuit (or the defaults of all). */
export interface CircuitSettings {
  /** @default { consecutiveFailures: 5 } */
  readonly opensAfter?: BreakerRule;
  /** How long an open circuit refuses calls before it lets one trial call through, in ms. @default 30_000 */
  readonly halfOpenAfterMs?: number;
}

/** Options of {@link circuitBreaker}. */
export interface CircuitBreakerOptions extends CircuitSettings {
  /** Settings per circuit name, over the defaults above (e.g. a slower dependency that needs longer to heal). */
  readonly circuits?: Readonly<Record<string, CircuitSettings>>;
  /**
   * Which errors count as failures of the dependency. @default isRetryable (a validation or authorization error is
   * the caller's fault, not the dependency's: it neither opens the circuit nor counts as a success)
   */
  readonly isFailure?: (error: unknown) => boolean;
  /** Called on every state change. Must not throw (what it throws is ignored). */
  readonly onStateChange?: (status: CircuitStatus) => void;
  readonly target?: BehaviorTarget;
}

/** The behavior, plus the state of its circuits. */
export interface CircuitBreakerBehavior extends Behavior {
  /** The state of one circuit (`closed` for one that never ran). */
  status(circuit: string): CircuitStatus;
  /** The state of every circuit that ran. */
  statuses(): readonly CircuitStatus[];
  /**
   * Holds a circuit open by hand (e.g. during a dependency's maintenance window) until the returned handle is
   * disposed. Calls fail at once with a {@link CircuitOpenError} whose `retryAt` is undefined.
   */
  isolate(circuit: string): Disposable;
}

const STATES: Record<CircuitState, CircuitStateName> = {
  [CircuitState.Closed]: 'closed',
  [CircuitState.Open]: 'open',
  [CircuitState.HalfOpen]: 'half-open',
  [CircuitState.Isolated]: 'isolated',
};

const DEFAULT_RULE: BreakerRule = { consecutiveFailures: 5 };
const DEFAULT_HALF_OPEN_MS = 30_000;
const MAX_HALF_OPEN_MS = 2_147_483_647;
const NAME_RE = /^[\x21-\x7e]{1,200}$/;

function checkSettings(where: string, settings: CircuitSettings): void {
  const fail = (problem: string) => {
    throw new ConfigurationError(`circuitBreaker: ${where}${problem}`);
  };
  if (typeof settings !== 'object' || settings === null) fail('settings must be an object');
  const ms = settings.halfOpenAfterMs;
  if (
    ms !== undefined &&
    !(typeof ms === 'number' && Number.isFinite(ms) && ms >= 1 && ms <= MAX_HALF_OPEN_MS)
  )
    fail(`halfOpenAfterMs must be a number of ms from 1 to ${MAX_HALF_OPEN_MS}, got ${String(ms)}`);
  const rule = settings.opensAfter as Record<string, unknown> | undefined;
  if (rule === undefined) return;
  if (typeof rule !== 'object' || rule === null)
    fail('opensAfter must be { consecutiveFailures } or { failureRatio, window }');
  const r = rule as Record<string, unknown>;
  if ('consecutiveFailures' in r) {
    const n = r.consecutiveFailures;
    if (!(Number.isInteger(n) && (n as number) >= 1 && (n as number) <= 10_000))
      fail(`opensAfter.consecutiveFailures must be an integer from 1 to 10000, got ${String(n)}`);
    return;
  }
  const { failureRatio, window, minimumCalls } = r;
  if (!(typeof failureRatio === 'number' && failureRatio > 0 && failureRatio < 1))
    fail(
      `opensAfter.failureRatio must be a number between 0 and 1 (both excluded), got ${String(failureRatio)}`,
    );
  if (!(Number.isInteger(window) && (window as number) >= 1 && (window as number) <= 100_000))
    fail(`opensAfter.window must be an integer from 1 to 100000, got ${String(window)}`);
  if (
    minimumCalls !== undefined &&
    !(
      Number.isInteger(minimumCalls) &&
      (minimumCalls as number) >= 1 &&
      (minimumCalls as number) <= (window as number)
    )
  )
    fail(`opensAfter.minimumCalls must be an integer from 1 to window, got ${String(minimumCalls)}`);
}

function breakerFor(rule: BreakerRule): IBreaker {
  if ('consecutiveFailures' in rule) return new ConsecutiveBreaker(rule.consecutiveFailures);
  return new CountBreaker({
    threshold: rule.failureRatio,
    size: rule.window,
    minimumNumberOfCalls: rule.minimumCalls ?? rule.window,
  });
}

/** The circuit a handler declares: its dependency's name, or its own for `circuit: true`. */
function circuitName(handler: HandlerDescriptor): string | undefined {
  const declared = handler.options.circuit;
  if (declared === undefined) return undefined;
  return declared === true ? `${handler.messageType}:${handler.name}` : declared;
}

/** One named circuit: cockatiel's policy, plus when it opened (cockatiel keeps that to itself). */
class Circuit {
  readonly name: string;
  readonly policy: CircuitBreakerPolicy;
  readonly halfOpenAfterMs: number;
  retryAt: number | undefined = undefined;
  lastFailure: unknown = undefined;

  constructor(
    name: string,
    settings: CircuitSettings,
    isFailure: (error: unknown) => boolean,
    notify: (c: Circuit) => void,
  ) {
    this.name = name;
    this.halfOpenAfterMs = settings.halfOpenAfterMs ?? DEFAULT_HALF_OPEN_MS;
    this.policy = cockatielBreaker(handleWhen(isFailure), {
      halfOpenAfter: this.halfOpenAfterMs,
      breaker: breakerFor(settings.opensAfter ?? DEFAULT_RULE),
    });
    this.policy.onBreak((reason) => {
      // cockatiel stamps the opening with Date.now() just before it emits: ours is the same or a little later,
      // so the retry time given to callers is never earlier than cockatiel's.
      this.retryAt = 'isolated' in reason ? undefined : Date.now() + this.halfOpenAfterMs;
      if ('error' in reason) this.lastFailure = reason.error;
    });
    this.policy.onReset(() => {
      this.retryAt = undefined;
    });
    this.policy.onStateChange(() => notify(this));
  }

  status(): CircuitStatus {
    const state = STATES[this.policy.state];
    return Object.freeze({
      circuit: this.name,
      state,
      retryAt: state === 'open' ? this.retryAt : undefined,
      lastFailure: this.lastFailure,
    });
  }

  refusal(cause?: unknown): CircuitOpenError {
    return new CircuitOpenError(
      this.name,
      this.policy.state === CircuitState.Isolated ? undefined : this.retryAt,
      {
        cause,
      },
    );
  }
}

/**
 * A circuit breaker for handlers, on cockatiel's `CircuitBreakerPolicy`: each handler that declares
 * `circuit: 'name'` shares the circuit of that dependency with every other handler naming it; `circuit: true`
 * gives the handler a circuit of its own. After `opensAfter` failures the circuit opens: calls fail at once,
 * without running the handler, with a {@link CircuitOpenError} (`CQRS_CIRCUIT_OPEN`) whose `retryAt` says when
 * the next trial call is let through; a successful trial closes the circuit, a failed one opens it again. Only
 * errors for which `isFailure` is true count (by default the shared retryability rule: a validation error does
 * not open a circuit). `status(name)`, `statuses()` and `onStateChange` show the state.
 *
 * Place it inside `retry()` (each attempt asks the circuit) and outside `timeout()` (a timeout counts as a
 * failure). Enforces the `circuit` policy: a mediator whose handlers declare `circuit` is refused without it.
 * @throws ConfigurationError (`CQRS_CONFIGURATION`) for malformed options.
 * @example
 * const breaker = circuitBreaker({ opensAfter: { consecutiveFailures: 3 }, halfOpenAfterMs: 10_000 });
 * createMediator({
 *   behaviors: [retry(), breaker, timeout()],
 *   handlers: [handle(ChargeCard, charge, { circuit: 'payments-api', timeout: 2_000 })],
 * });
 * breaker.status('payments-api'); // { circuit: 'payments-api', state: 'closed', retryAt: undefined, ... }
 */
export function circuitBreaker(options: CircuitBreakerOptions = {}): CircuitBreakerBehavior {
  if (typeof options !== 'object' || options === null)
    throw new ConfigurationError('circuitBreaker takes an options object');
  checkSettings('', options);
  const perCircuit = options.circuits ?? {};
  if (typeof perCircuit !== 'object' || perCircuit === null)
    throw new ConfigurationError('circuitBreaker: circuits must be an object');
  for (const [name, settings] of Object.entries(perCircuit)) {
    if (!NAME_RE.test(name))
      throw new ConfigurationError(
        `circuitBreaker: circuit name ${JSON.stringify(name.slice(0, 40))} is not 1 to 200 printable characters`,
      );
    checkSettings(`circuits.${name}: `, settings);
  }
  const isFailure = options.isFailure ?? isRetryable;
  if (typeof isFailure !== 'function')
    throw new ConfigurationError('circuitBreaker: isFailure must be a function (error) => boolean');
  const onStateChange = options.onStateChange;
  if (onStateChange !== undefined && typeof onStateChange !== 'function')
    throw new ConfigurationError('circuitBreaker: onStateChange must be a function (status) => void');
  const notify = (circuit: Circuit) => {
    try {
      onStateChange?.(circuit.status());
    } catch {
      // observers must not change the outcome
    }
  };
  const circuits = new Map<string, Circuit>();
  const circuitOf = (name: string): Circuit => {
    let circuit = circuits.get(name);
    if (circuit === undefined) {
      const settings = { ...options, ...perCircuit[name] };
      circuit = new Circuit(
        name,
        settings,
        (error) => !(error instanceof CircuitOpenError) && isFailure(error),
        notify,
      );
      circuits.set(name, circuit);
    }
    return circuit;
  };

  const forHandler = (handler: HandlerDescriptor): Middleware | undefined => {
    const name = circuitName(handler);
    if (name === undefined) return undefined;
    const circuit = circuitOf(name);
    const { policy } = circuit;
    return (message, context, next) => {
      const state = policy.state;
      // An open circuit answers at once, without the handler and without cockatiel's async frame.
      if (
        state === CircuitState.Isolated ||
        (state === CircuitState.Open && circuit.retryAt !== undefined && Date.now() < circuit.retryAt)
      )
        return Promise.reject(circuit.refusal());
      return policy
        .execute(() => next(message, context))
        .catch((error: unknown) => {
          if (error instanceof BrokenCircuitError || error instanceof IsolatedCircuitError)
            throw circuit.refusal(error);
          throw error;
        });
    };
  };

  return Object.freeze({
    name: 'circuitBreaker',
    ...(options.target === undefined ? {} : { target: options.target }),
    enforces: Object.freeze(['circuit'] as const),
    forHandler,
    status: (name: string) =>
      circuits.get(name)?.status() ??
      Object.freeze({ circuit: name, state: 'closed' as const, retryAt: undefined, lastFailure: undefined }),
    statuses: () => [...circuits.values()].map((c) => c.status()),
    isolate: (name: string) => {
      const handle = circuitOf(name).policy.isolate();
      return { [Symbol.dispose]: () => handle.dispose() };
    },
  });
}
