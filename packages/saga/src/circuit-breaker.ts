import {
  BrokenCircuitError,
  type CircuitBreakerPolicy,
  CircuitState,
  ConsecutiveBreaker,
  circuitBreaker,
  handleWhen,
} from 'cockatiel';
import { CircuitOpenError } from './saga-errors.ts';

/** State of one circuit as seen by this process. */
export type CircuitStatus = 'closed' | 'open' | 'half-open' | 'isolated';

/**
 * Shared circuit state, so several processes see one open circuit. A process that opens its circuit writes
 * `open(key, until)`; every process checks `openUntil(key)` before a call and fails fast while it lies in the
 * future. Failure counting stays per process (cockatiel's breaker); only the open state is shared.
 */
export interface CircuitStateStore {
  /** Epoch ms until which the circuit `key` is held open, or `undefined` when it is not. */
  openUntil(key: string): Promise<number | undefined>;
  /** Marks the circuit open until `until` (epoch ms) for every process. */
  open(key: string, until: number): Promise<void>;
  /** Clears the mark (a half-open probe succeeded somewhere). */
  close(key: string): Promise<void>;
}

/** Guards calls by key; the interface saga steps use. */
export interface CircuitBreaker {
  /**
   * Runs `fn` through the circuit `key`. While the circuit is open (locally or in the shared store) it throws a
   * {@link CircuitOpenError} without calling `fn`. The call whose failure reaches `failMax` throws its own
   * error (the circuit opens after it); later calls throw the open error.
   */
  call<TResult>(
    key: string,
    fn: (signal: AbortSignal) => Promise<TResult>,
    signal?: AbortSignal,
  ): Promise<TResult>;
  /** True for the error thrown while a circuit is open. */
  isOpenError(error: unknown): boolean;
  /** Local state of a circuit (`closed` for one never used). */
  status(key: string): CircuitStatus;
}

/** Options of {@link createCircuitBreaker}. */
export interface CircuitBreakerOptions {
  /** Consecutive failures that open a circuit. @default 5 */
  readonly failMax?: number;
  /** How long a circuit stays open before a half-open probe, in ms. @default 60_000 */
  readonly resetTimeoutMs?: number;
  /** Errors for which this returns true do not count as failures (e.g. validation errors). */
  readonly exclude?: (error: unknown) => boolean;
  /** Shares the open state between processes. Default: none (per process). */
  readonly store?: CircuitStateStore;
  /** Called on every local state change. Must not throw. */
  readonly onStateChange?: (key: string, status: CircuitStatus) => void;
  /** Receives shared-store failures (the breaker then acts on local state only). Default: ignored. */
  readonly onError?: (error: unknown) => void;
  /** Clock, epoch ms. @default Date.now */
  readonly now?: () => number;
}

const STATUS: Record<CircuitState, CircuitStatus> = {
  [CircuitState.Closed]: 'closed',
  [CircuitState.Open]: 'open',
  [CircuitState.HalfOpen]: 'half-open',
  [CircuitState.Isolated]: 'isolated',
};

/**
 * A keyed circuit breaker over cockatiel's `CircuitBreakerPolicy` with a `ConsecutiveBreaker`: one policy per key
 * (keys are stable step names such as `orders/charge`), optionally sharing the open state through a
 * {@link CircuitStateStore} (in memory, or Redis with `createRedisCircuitStateStore`).
 */
export function createCircuitBreaker(options: CircuitBreakerOptions = {}): CircuitBreaker {
  const failMax = options.failMax ?? 5;
  const resetTimeoutMs = options.resetTimeoutMs ?? 60_000;
  const exclude = options.exclude;
  const store = options.store;
  const now = options.now ?? Date.now;
  const onError = options.onError ?? (() => {});
  const policies = new Map<string, CircuitBreakerPolicy>();
  const filter = handleWhen((error) => !(error instanceof CircuitOpenError) && !exclude?.(error));

  const policyFor = (key: string): CircuitBreakerPolicy => {
    let policy = policies.get(key);
    if (policy !== undefined) return policy;
    policy = circuitBreaker(filter, {
      halfOpenAfter: resetTimeoutMs,
      breaker: new ConsecutiveBreaker(failMax),
    });
    policy.onStateChange((state) => options.onStateChange?.(key, STATUS[state]));
    if (store !== undefined) {
      policy.onBreak(() => {
        store.open(key, now() + resetTimeoutMs).catch(onError);
      });
      policy.onReset(() => {
        store.close(key).catch(onError);
      });
    }
    policies.set(key, policy);
    return policy;
  };

  return {
    async call(key, fn, signal) {
      const policy = policyFor(key);
      if (store !== undefined && policy.state === CircuitState.Closed) {
        let until: number | undefined;
        try {
          until = await store.openUntil(key);
        } catch (error) {
          onError(error);
        }
        if (until !== undefined && until > now()) throw new CircuitOpenError(key);
      }
      try {
        return await policy.execute(({ signal: s }) => fn(s), signal);
      } catch (error) {
        if (error instanceof BrokenCircuitError) throw new CircuitOpenError(key, { cause: error });
        throw error;
      }
    },
    isOpenError: (error) => error instanceof CircuitOpenError,
    status: (key) => {
      const policy = policies.get(key);
      return policy === undefined ? 'closed' : STATUS[policy.state];
    },
  };
}

/** A {@link CircuitStateStore} in process memory (shares open circuits between breakers of one process). */
export function createInMemoryCircuitStateStore(): CircuitStateStore {
  const open = new Map<string, number>();
  return {
    async openUntil(key) {
      return open.get(key);
    },
    async open(key, until) {
      open.set(key, Math.max(until, open.get(key) ?? 0));
    },
    async close(key) {
      open.delete(key);
    },
  };
}
