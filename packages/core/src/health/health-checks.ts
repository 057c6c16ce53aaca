import type { MessageConsumer } from '../broker/message-consumer.ts';
import { ConfigurationError } from '../errors/cqrs-error.ts';
import type { OutboxRelay } from '../outbox/outbox-relay.ts';
import type { ProjectionRunner } from '../projections/projection-runner.ts';
import { errorText } from '../shared/error-text.ts';
import type { Heartbeat } from '../shared/heartbeat.ts';
import { heartbeatLateness } from '../shared/heartbeat.ts';
import type { HealthCheckResult, HealthComponent } from './health.ts';

/** When a loop counts as stalled: no beat for this many poll intervals past the time its next cycle was due. */
export interface LoopHealthOptions {
  /** @default 2 */
  readonly missedIntervals?: number;
  /** Clock, epoch ms. @default Date.now */
  readonly now?: () => number;
}

const missed = (options: LoopHealthOptions | undefined): number => {
  const n = options?.missedIntervals ?? 2;
  if (!(n > 0)) throw new ConfigurationError('health: missedIntervals must be > 0');
  return n;
};

/** The heartbeat's verdict: `undefined` when on time, else the `fail` result. */
function heartbeatVerdict(hb: Heartbeat, now: number, intervals: number): HealthCheckResult | undefined {
  if (!hb.running) return { status: 'fail', output: 'loop not running' };
  const late = heartbeatLateness(hb, now);
  if (late >= intervals * hb.intervalMs) {
    return {
      status: 'fail',
      output: `no heartbeat for ${late} ms past the cycle due (${hb.cycles} cycles so far): the loop is stuck`,
      observedValue: late,
      observedUnit: 'ms',
    };
  }
  return undefined;
}

/**
 * Awaits `read` (a health read that may touch the store), but no longer than the loop's heartbeat stays on
 * time: a read stuck behind the same frozen dependency as the loop answers with the heartbeat's verdict.
 */
async function whileBeating<T>(
  heartbeat: () => Heartbeat,
  now: () => number,
  intervals: number,
  read: () => Promise<T>,
): Promise<{ readonly value: T } | HealthCheckResult> {
  const hb = heartbeat();
  const deadline = (hb.nextDueAt ?? now()) + intervals * hb.intervalMs;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<undefined>((resolve) => {
    timer = setTimeout(() => resolve(undefined), Math.max(0, deadline - now()) + 1);
  });
  try {
    const value = await Promise.race([read().then((v) => ({ value: v })), late]);
    if (value !== undefined) return value;
  } finally {
    clearTimeout(timer);
  }
  return (
    heartbeatVerdict(heartbeat(), now(), intervals) ?? {
      status: 'fail',
      output: 'health read did not answer while the loop kept beating',
    }
  );
}

/**
 * Readiness of any background loop that exposes a heartbeat (a saga recovery agent, your own poller): `fail`
 * when stopped, or when its next cycle is `missedIntervals` poll intervals late.
 */
export function loopHealth(
  name: string,
  loop: { heartbeat(): Heartbeat },
  options?: LoopHealthOptions,
): HealthComponent {
  const intervals = missed(options);
  const now = options?.now ?? Date.now;
  return {
    name,
    check: () => heartbeatVerdict(loop.heartbeat(), now(), intervals) ?? { status: 'pass' },
  };
}

/** Options of {@link relayHealth}. */
export interface RelayHealthOptions extends LoopHealthOptions {
  /** @default 'outbox-relay' */
  readonly name?: string;
  /** `fail` when the oldest pending event is older than this, in ms. @default 60000 */
  readonly maxOldestPendingAgeMs?: number;
  /** `warn` when it is older than this, in ms. @default half of `maxOldestPendingAgeMs` */
  readonly warnOldestPendingAgeMs?: number;
}

/**
 * Readiness of an outbox relay: `fail` when it is not running, stalled (its next cycle `missedIntervals` poll
 * intervals late: alive but not cycling), the broker is unreachable (circuit open), it reports `stalled`, or
 * the oldest pending event is older than `maxOldestPendingAgeMs`; `warn` past `warnOldestPendingAgeMs`.
 */
export function relayHealth(relay: OutboxRelay, options?: RelayHealthOptions): HealthComponent {
  const intervals = missed(options);
  const now = options?.now ?? Date.now;
  const maxAge = options?.maxOldestPendingAgeMs ?? 60_000;
  const warnAge = options?.warnOldestPendingAgeMs ?? maxAge / 2;
  return {
    name: options?.name ?? 'outbox-relay',
    async check() {
      const stuck = heartbeatVerdict(relay.heartbeat(), now(), intervals);
      if (stuck !== undefined) return stuck;
      const read = await whileBeating(relay.heartbeat, now, intervals, () => relay.health());
      if (!('value' in read)) return read;
      const h = read.value;
      const age = { observedValue: h.oldestPendingAgeMs, observedUnit: 'ms' };
      if (h.circuit !== 'closed')
        return { status: 'fail', output: `broker unreachable: ${h.lastError ?? 'circuit open'}`, ...age };
      if (h.stalled) return { status: 'fail', output: 'backlog but nothing published', ...age };
      if (h.oldestPendingAgeMs > maxAge)
        return { status: 'fail', output: `oldest pending event is ${h.oldestPendingAgeMs} ms old`, ...age };
      if (h.oldestPendingAgeMs > warnAge)
        return { status: 'warn', output: `oldest pending event is ${h.oldestPendingAgeMs} ms old`, ...age };
      return { status: 'pass', ...age };
    },
  };
}

/** Options of {@link consumerHealth}. */
export interface ConsumerHealthOptions extends LoopHealthOptions {
  /** `fail` when the consumer reconnected this many times within `windowMs`. @default 3 */
  readonly maxRestarts?: number;
  /** @default 60000 */
  readonly windowMs?: number;
}

/**
 * Readiness of a broker consumer: `fail` when it is not running, not connected, keeps restarting (`maxRestarts`
 * reconnects within `windowMs`, counted from when this check was created) or its fetch loop's heartbeat is
 * late; `warn` while paused because a handler's dependency is down.
 */
export function consumerHealth(
  name: string,
  consumer: Pick<MessageConsumer, 'health'>,
  options?: ConsumerHealthOptions,
): HealthComponent {
  const intervals = missed(options);
  const now = options?.now ?? Date.now;
  const maxRestarts = options?.maxRestarts ?? 3;
  const windowMs = options?.windowMs ?? 60_000;
  if (!(maxRestarts >= 1) || !(windowMs > 0))
    throw new ConfigurationError('consumerHealth: maxRestarts must be >= 1 and windowMs > 0');
  // samples of the reconnect counter; the first is the baseline at creation
  const samples: { at: number; reconnects: number }[] = [
    { at: now(), reconnects: consumer.health().reconnects },
  ];
  return {
    name,
    check() {
      const h = consumer.health();
      const t = now();
      while (samples.length > 1 && samples[1]!.at <= t - windowMs) samples.shift();
      samples.push({ at: t, reconnects: h.reconnects });
      if (samples.length > 64) samples.splice(1, 1);
      const restarts = h.reconnects - samples[0]!.reconnects;
      const base = { observedValue: restarts, observedUnit: 'restarts' };
      if (!h.running) return { status: 'fail', output: 'consumer not running', ...base };
      if (restarts >= maxRestarts) {
        const reason = h.lastError === undefined ? '' : `; last error: ${h.lastError}`;
        return {
          status: 'fail',
          output: `consumer restarted ${restarts} times in ${Math.round(windowMs / 1000)} s${reason}`,
          ...base,
        };
      }
      if (!h.connected)
        return {
          status: 'fail',
          output: `not connected to the broker: ${h.lastError ?? 'reconnecting'}`,
          ...base,
        };
      // paused on purpose (its fetch loop is parked): not stuck
      if (h.paused) return { status: 'warn', output: "paused: a handler's dependency is down", ...base };
      if (h.heartbeat !== undefined) {
        const stuck = heartbeatVerdict(h.heartbeat, t, intervals);
        if (stuck !== undefined) return stuck;
      }
      return { status: 'pass', ...base };
    },
  };
}

/** Options of {@link projectionHealth}. */
export interface ProjectionHealthOptions extends LoopHealthOptions {
  /** Component name. @default `projection:<name>` */
  readonly component?: string;
  /** `fail` when more events than this wait to be applied. @default 1000 */
  readonly maxLagEvents?: number;
  /** `fail` when the oldest event not applied is older than this, in ms. @default 60000 */
  readonly maxLagMs?: number;
}

/**
 * Readiness of one projection of a runner: `fail` when this runner's loop of it is stopped or late (alive but
 * not cycling), the projection stopped on a poison event, or its lag is over `maxLagEvents` or `maxLagMs`;
 * `warn` past half of either.
 */
export function projectionHealth(
  runner: ProjectionRunner,
  name: string,
  options?: ProjectionHealthOptions,
): HealthComponent {
  const intervals = missed(options);
  const now = options?.now ?? Date.now;
  const maxEvents = options?.maxLagEvents ?? 1000;
  const maxMs = options?.maxLagMs ?? 60_000;
  runner.heartbeat(name); // throws for a name the runner does not run
  return {
    name: options?.component ?? `projection:${name}`,
    async check() {
      const beat = () => runner.heartbeat(name);
      const stuck = heartbeatVerdict(beat(), now(), intervals);
      if (stuck !== undefined) return stuck;
      const read = await whileBeating(beat, now, intervals, () => runner.status(name));
      if (!('value' in read)) return read;
      const s = read.value;
      const lag = { observedValue: s.lagEvents, observedUnit: 'events' };
      if (s.state === 'stopped')
        return { status: 'fail', output: `stopped on a poison event: ${s.lastError?.error ?? ''}`, ...lag };
      const over = `lag ${s.lagEvents}${s.lagCapped ? '+' : ''} events, ${s.lagMs} ms`;
      if (s.lagEvents > maxEvents || s.lagMs > maxMs) return { status: 'fail', output: over, ...lag };
      if (s.lagEvents > maxEvents / 2 || s.lagMs > maxMs / 2) return { status: 'warn', output: over, ...lag };
      return { status: 'pass', ...lag };
    },
  };
}

/**
 * Readiness of a connection (database, broker, cache): `pass` when `ping` resolves, `fail` with its error.
 * `ping` gets the check's abort signal (aborted on timeout).
 */
export function connectionHealth(
  name: string,
  ping: (signal: AbortSignal) => Promise<unknown>,
  options?: { readonly type?: string },
): HealthComponent {
  if (typeof ping !== 'function') throw new ConfigurationError('connectionHealth: ping must be a function');
  return {
    name,
    type: options?.type ?? 'datastore',
    async check(signal) {
      const started = Date.now();
      try {
        await ping(signal);
      } catch (error) {
        return { status: 'fail', output: errorText(error) };
      }
      return { status: 'pass', observedValue: Date.now() - started, observedUnit: 'ms' };
    },
  };
}
