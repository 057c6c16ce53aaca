import { monitorEventLoopDelay } from 'node:perf_hooks';
import { ConfigurationError } from '../errors/cqrs-error.ts';
import { errorText } from '../shared/error-text.ts';

/** A component's verdict: `pass` healthy, `warn` degraded but serving, `fail` not ready (or not alive). */
export type HealthStatus = 'pass' | 'warn' | 'fail';

/** What one check found, in the shape of a check of the IETF health-check draft (`application/health+json`). */
export interface HealthCheckResult {
  readonly status: HealthStatus;
  /** Why, for `warn` and `fail` (and sometimes `pass`). */
  readonly output?: string;
  /** The measured value the verdict is based on (a lag, an age, a delay). */
  readonly observedValue?: number;
  /** Unit of `observedValue`: `ms`, `events`, `restarts`, ... */
  readonly observedUnit?: string;
}

/**
 * One component to check. Readiness checks may touch dependencies; liveness checks must not (a liveness probe
 * that fails because the database is down restarts every pod at once).
 */
export interface HealthComponent {
  /** Unique name, e.g. `postgres`, `outbox-relay`, `consumer:billing`. Becomes the key in `checks`. */
  readonly name: string;
  /** `datastore`, `component`, `system`, ... (the draft's `componentType`). @default 'component' */
  readonly type?: string;
  /** `readiness` (the default) or `liveness`. */
  readonly probe?: 'readiness' | 'liveness';
  /** Runs the check; a throw, rejection or timeout counts as `fail` with the reason. */
  check(signal: AbortSignal): Promise<HealthCheckResult> | HealthCheckResult;
}

/** One entry of {@link HealthReport.checks}. */
export interface HealthCheckEntry extends HealthCheckResult {
  readonly componentType: string;
  /** ISO time of the check. */
  readonly time: string;
}

/** The JSON body of `/health/live` and `/health/ready` (`application/health+json`). */
export interface HealthReport {
  /** The worst status of the checks. */
  readonly status: HealthStatus;
  readonly serviceId?: string;
  readonly version?: string;
  readonly description?: string;
  /** One entry list per component name. */
  readonly checks: Readonly<Record<string, readonly HealthCheckEntry[]>>;
}

/** Options of {@link createHealth}. */
export interface HealthOptions {
  /** Readiness (and extra liveness) components: see `relayHealth`, `consumerHealth`, `projectionHealth`, ... */
  readonly components?: readonly HealthComponent[];
  /** A check that has not answered after this long fails with `timed out`. @default 2000 */
  readonly timeoutMs?: number;
  /**
   * Liveness: the event loop delay (p99 since the previous probe) at which the process warns and fails. A
   * process whose loop is blocked that long cannot serve. @default { warnMs: 200, failMs: 1000 }
   */
  readonly eventLoop?: { readonly warnMs?: number; readonly failMs?: number };
  readonly serviceId?: string;
  readonly version?: string;
  readonly description?: string;
  /** Clock, epoch ms. @default Date.now */
  readonly now?: () => number;
}

/** Liveness and readiness of a service. Close it to stop sampling the event loop. */
export interface Health extends Disposable {
  /** The process and its event loop only, never dependencies. */
  live(): Promise<HealthReport>;
  /** Every readiness component (and the liveness checks): ready to take traffic when not `fail`. */
  ready(): Promise<HealthReport>;
  close(): void;
}

/** `fail` beats `warn` beats `pass`. */
export function worstStatus(a: HealthStatus, b: HealthStatus): HealthStatus {
  return a === 'fail' || b === 'fail' ? 'fail' : a === 'warn' || b === 'warn' ? 'warn' : 'pass';
}

/**
 * Creates the health model: liveness (the process and its event loop delay, sampled with `monitorEventLoopDelay`)
 * and readiness (the given components, run concurrently, each bounded by `timeoutMs`). Mount it with
 * `@cqrs-ts/http` (`health` option of the framework packages) as `/health/live` and `/health/ready`.
 * @throws ConfigurationError for duplicate component names or malformed options
 */
export function createHealth(options: HealthOptions = {}): Health {
  const components = options.components ?? [];
  const names = new Set<string>(['process', 'event-loop']);
  for (const c of components) {
    if (typeof c?.name !== 'string' || c.name === '' || typeof c.check !== 'function')
      throw new ConfigurationError('health: every component needs a name and a check function');
    if (names.has(c.name)) throw new ConfigurationError(`health: two components named ${c.name}`);
    names.add(c.name);
  }
  const timeoutMs = options.timeoutMs ?? 2000;
  const warnMs = options.eventLoop?.warnMs ?? 200;
  const failMs = options.eventLoop?.failMs ?? 1000;
  if (!(timeoutMs > 0) || !(warnMs > 0) || !(failMs >= warnMs))
    throw new ConfigurationError(
      'health: timeoutMs and eventLoop thresholds must be positive, failMs >= warnMs',
    );
  const now = options.now ?? Date.now;
  const histogram = monitorEventLoopDelay({ resolution: 10 });
  histogram.enable();
  const startedAt = now();

  const eventLoop: HealthComponent = {
    name: 'event-loop',
    type: 'system',
    probe: 'liveness',
    check() {
      const p99 = histogram.count === 0 ? 0 : histogram.percentile(99) / 1e6;
      histogram.reset();
      const observedValue = Math.round(p99 * 10) / 10;
      const base = { observedValue, observedUnit: 'ms' };
      if (p99 >= failMs)
        return { status: 'fail', output: `event loop delay p99 ${observedValue} ms`, ...base };
      if (p99 >= warnMs)
        return { status: 'warn', output: `event loop delay p99 ${observedValue} ms`, ...base };
      return { status: 'pass', ...base };
    },
  };
  const processCheck: HealthComponent = {
    name: 'process',
    type: 'system',
    probe: 'liveness',
    check: () => ({
      status: 'pass',
      observedValue: Math.round((now() - startedAt) / 1000),
      observedUnit: 's',
    }),
  };
  const liveness = [processCheck, eventLoop, ...components.filter((c) => c.probe === 'liveness')];
  const readiness = [processCheck, eventLoop, ...components.filter((c) => c.probe !== 'liveness')];

  const runOne = async (c: HealthComponent): Promise<HealthCheckEntry> => {
    const controller = new AbortController();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<HealthCheckResult>((resolve) => {
      timer = setTimeout(() => {
        controller.abort();
        resolve({ status: 'fail', output: `check timed out after ${timeoutMs} ms` });
      }, timeoutMs);
    });
    let result: HealthCheckResult;
    try {
      result = await Promise.race([Promise.resolve().then(() => c.check(controller.signal)), timeout]);
    } catch (error) {
      result = { status: 'fail', output: errorText(error) };
    } finally {
      clearTimeout(timer);
    }
    return Object.freeze({
      ...result,
      status: result?.status === 'pass' || result?.status === 'warn' ? result.status : 'fail',
      componentType: c.type ?? 'component',
      time: new Date(now()).toISOString(),
    });
  };

  const report = async (list: readonly HealthComponent[]): Promise<HealthReport> => {
    const entries = await Promise.all(list.map(runOne));
    let status: HealthStatus = 'pass';
    const checks: Record<string, readonly HealthCheckEntry[]> = {};
    for (let i = 0; i < list.length; i++) {
      const entry = entries[i]!;
      status = worstStatus(status, entry.status);
      checks[list[i]!.name] = [entry];
    }
    return Object.freeze({
      status,
      ...(options.serviceId === undefined ? {} : { serviceId: options.serviceId }),
      ...(options.version === undefined ? {} : { version: options.version }),
      ...(options.description === undefined ? {} : { description: options.description }),
      checks,
    });
  };

  const health: Health = {
    live: () => report(liveness),
    ready: () => report(readiness),
    close: () => histogram.disable(),
    [Symbol.dispose]: () => histogram.disable(),
  };
  return health;
}
