/**
 * A background loop's sign of life, recorded once per cycle (a finished cycle, just before the loop waits for
 * the next one). A loop that is alive but no longer cycling (an await that never resolves) stops beating; a
 * health check then sees `nextDueAt` pass. See `createHealth` and its loop checks.
 */
export interface Heartbeat {
  /** Epoch ms of the last beat, `undefined` before the first cycle finished. */
  readonly at: number | undefined;
  /** Cycles finished since the loop was created. */
  readonly cycles: number;
  /**
   * Epoch ms at which the next cycle should start (the last beat plus the wait the loop chose: its poll
   * interval, a backoff, a probe delay); `undefined` before the first beat.
   */
  readonly nextDueAt: number | undefined;
  /** The loop's poll interval in ms, the unit in which a late beat is measured. */
  readonly intervalMs: number;
  /** Whether the loop is started (a stopped loop does not beat and is not late). */
  readonly running: boolean;
}

/** The writing side of a {@link Heartbeat}, kept by the loop (for authors of background loops). */
export interface HeartbeatRecorder {
  /** Records a finished cycle; the next one is due after `waitMs`. */
  beat(waitMs: number): void;
  /** Marks a cycle starting (earlier than due, e.g. on a wake-up): lateness counts from now. */
  cycle(): void;
  /** Marks the loop started (due within one interval) or stopped. */
  running(on: boolean): void;
  /** A frozen copy of the current state. */
  read(): Heartbeat;
}

/** Creates a recorder: two numbers written per cycle, nothing allocated until it is read. */
export function createHeartbeat(intervalMs: number, now: () => number = Date.now): HeartbeatRecorder {
  let at: number | undefined;
  let nextDueAt: number | undefined;
  let cycles = 0;
  let on = false;
  return {
    beat(waitMs) {
      const t = now();
      at = t;
      nextDueAt = t + Math.max(0, waitMs);
      cycles++;
    },
    cycle() {
      const t = now();
      if (nextDueAt === undefined || t < nextDueAt) nextDueAt = t;
    },
    running(value) {
      on = value;
      if (value) nextDueAt = now();
    },
    read: () => Object.freeze({ at, cycles, nextDueAt, intervalMs, running: on }),
  };
}

/**
 * How late a loop's next cycle is, in ms (0 when on time or stopped): the time past `nextDueAt`. A loop stuck
 * in a cycle for more than `missedIntervals` poll intervals counts as stalled.
 */
export function heartbeatLateness(heartbeat: Heartbeat, now: number): number {
  if (!heartbeat.running || heartbeat.nextDueAt === undefined) return 0;
  return Math.max(0, now - heartbeat.nextDueAt);
}
