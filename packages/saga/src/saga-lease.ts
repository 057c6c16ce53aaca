/**
 * Leases of running steps. While a step or compensation of a run executes, its lease is renewed once a third
 * of it has passed (one renewal in flight at a time, retried at the next tick after a storage error). A refused
 * renewal, or one not confirmed before the last sixth of the lease, aborts the step and stops the run before
 * another worker can take the saga; the run then commits nothing. Renewals never overlap a commit of the same
 * run, so a refusal always means the lease is gone (the version, the fencing token, moved). @internal
 * @module
 */
import { SagaLeaseError } from './saga-errors.ts';
import type { SagaRun } from './saga-run.ts';

/** The runs with a step executing, whose leases one runner-wide timer keeps; it stops when idle for a while. */
export class ActiveRuns {
  readonly #runs = new Set<SagaRun>();
  readonly #every: number;
  /** Renew once the confirmed lease has less than this left (two thirds of it). */
  readonly renewBefore: number;
  /** Give the lease up once less than this is left without a confirmed renewal (a sixth of it). */
  readonly giveUpBefore: number;
  #timer: ReturnType<typeof setInterval> | undefined;
  #idleTicks = 0;
  constructor(leaseMs: number) {
    this.#every = Math.max(2, Math.floor(leaseMs / 10));
    this.renewBefore = leaseMs - Math.floor(leaseMs / 3);
    this.giveUpBefore = Math.floor(leaseMs / 6);
  }
  add(run: SagaRun): void {
    this.#runs.add(run);
    if (this.#timer === undefined) {
      this.#timer = setInterval(() => this.#tick(), this.#every);
      this.#timer.unref();
    }
  }
  delete(run: SagaRun): void {
    this.#runs.delete(run);
  }
  #tick(): void {
    if (this.#runs.size === 0) {
      // Stop after a few idle periods; the next step starts it again.
      if (++this.#idleTicks > 3) {
        clearInterval(this.#timer);
        this.#timer = undefined;
        this.#idleTicks = 0;
      }
      return;
    }
    this.#idleTicks = 0;
    for (const run of this.#runs) keep(run, this);
  }
}

/** One tick for one run: give the lease up when it is about to lapse unconfirmed, else renew when due. */
function keep(run: SagaRun, active: ActiveRuns): void {
  if (run.leaseLost !== undefined) return;
  const left = run.leaseUntil - run.rt.now();
  if (left <= active.giveUpBefore) {
    run.loseLease(new SagaLeaseError(run.id, 'the lease could not be renewed in time; this run stops'));
  } else if (left <= active.renewBefore && run.renewing === undefined) {
    run.renewing = renew(run).then(
      () => {
        run.renewing = undefined;
      },
      (error: unknown) => {
        run.renewing = undefined;
        run.rt.onError(error, { sagaId: run.id, phase: 'lease' });
      },
    );
  }
}

/** Renews the run's lease; a refusal loses it. Storage errors propagate. */
async function renew(run: SagaRun): Promise<void> {
  const rt = run.rt;
  const sentAt = rt.now();
  const ok = await rt.store.renew({
    id: run.id,
    owner: rt.owner,
    expectedVersion: run.version,
    now: sentAt,
    leaseMs: rt.leaseMs,
  });
  if (!ok) run.loseLease(new SagaLeaseError(run.id, 'lost the lease to another worker; this run stops'));
  else if (sentAt + rt.leaseMs > run.leaseUntil) run.leaseUntil = sentAt + rt.leaseMs;
}

/** Whether {@link ensureLease} has anything to do (checked first: the usual step follows a fresh commit). */
export function leaseNeedsCare(run: SagaRun): boolean {
  return run.leaseLost !== undefined || run.leaseUntil - run.rt.now() <= run.rt.active.renewBefore;
}

/**
 * Before a step or compensation starts: renews a lease that may have lapsed since the last commit (a slow
 * reader of the step stream, a slow publish), so no step starts without it.
 * @throws SagaLeaseError when the lease is gone; a storage error when the renewal could not be made.
 */
export async function ensureLease(run: SagaRun): Promise<void> {
  if (run.leaseLost !== undefined) throw run.leaseLost;
  const active = run.rt.active;
  if (run.leaseUntil - run.rt.now() > active.renewBefore) return;
  await renew(run);
  if (run.leaseLost === undefined && run.leaseUntil - run.rt.now() <= active.giveUpBefore) {
    run.loseLease(new SagaLeaseError(run.id, 'the lease could not be renewed in time; this run stops'));
  }
  if (run.leaseLost !== undefined) throw run.leaseLost;
}

/**
 * Runs `work` (a step or compensation with its retries) while keeping the run's lease.
 * @throws SagaLeaseError when the lease is lost or could not be renewed in time (then `work`'s result is dropped).
 */
export async function withLease<T>(run: SagaRun, work: () => Promise<T>): Promise<T> {
  const active = run.rt.active;
  active.add(run);
  let result: T;
  try {
    result = await work();
  } catch (error) {
    if (run.leaseLost !== undefined) throw run.leaseLost;
    throw error;
  } finally {
    active.delete(run);
    // The commit that follows must not race a renewal of the same version (a lost lease commits nothing).
    if (run.renewing !== undefined && run.leaseLost === undefined) await run.renewing;
  }
  if (run.leaseLost !== undefined) throw run.leaseLost;
  return result;
}
