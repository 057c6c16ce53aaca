/**
 * Leases of running steps: one runner-wide timer renews the lease of every run with a step executing; a lease
 * found lost aborts the step. @internal
 * @module
 */
import { SagaLeaseError } from './saga-errors.ts';
import type { SagaRun } from './saga-run.ts';

/** A set of runs whose leases one timer renews; the timer runs only while the set is non-empty for a while. */
export class ActiveRuns {
  readonly #runs = new Set<SagaRun>();
  readonly #every: number;
  #timer: ReturnType<typeof setInterval> | undefined;
  #idleTicks = 0;
  constructor(leaseMs: number) {
    this.#every = Math.max(5, Math.floor(leaseMs / 3));
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
    for (const run of this.#runs) renewLease(run);
  }
}

/** Renews the lease while `work` runs; a lost lease aborts the step. */
export async function withLease<T>(run: SagaRun, work: () => Promise<T>): Promise<T> {
  const active = run.rt.active;
  active.add(run);
  try {
    return await work();
  } catch (error) {
    const reason = run.controller.signal.reason;
    if (reason instanceof SagaLeaseError) throw reason;
    throw error;
  } finally {
    active.delete(run);
  }
}

/** Called by the runner's lease timer while a step of this run is executing. */
function renewLease(run: SagaRun): void {
  const rt = run.rt;
  rt.store
    .renew({
      id: run.id,
      owner: rt.owner,
      expectedVersion: run.version,
      now: rt.now(),
      leaseMs: rt.leaseMs,
    })
    .then(async (ok) => {
      if (ok) return;
      // A commit of this run may have landed between reading the version and the renewal (it moves the
      // version and extends the lease itself): only a lease that is really someone else's, or expired, is lost.
      const stored = await rt.store.load(run.id);
      const ours =
        stored !== undefined &&
        stored.leaseOwner === rt.owner &&
        stored.leaseUntil !== null &&
        stored.leaseUntil > rt.now() &&
        stored.version >= run.version;
      if (!ours) run.controller.abort(new SagaLeaseError(run.id, 'lost the lease to another worker'));
    })
    .catch((error: unknown) => rt.onError(error, { sagaId: run.id, phase: 'lease' }));
}
