/** Offsets to commit for one partition: the next offset to consume (Kafka's convention). */
export interface OffsetCommit {
  readonly topic: string;
  readonly partition: number;
  /** Everything below it was handled (or never delivered: compacted, transaction markers). */
  readonly offset: bigint;
  readonly leaderEpoch: number;
}

/**
 * Per-partition bookkeeping of which consumed offsets may be committed. Records of a partition finish out of
 * order (several keys run at once, retries), but the committed offset must never pass an unfinished one:
 * the commit position is the smallest unfinished offset, or the highest delivered offset + 1 when nothing is
 * unfinished. Redeliveries (the same offset again after a rebalance) are tracked as separate entries, and the
 * position never moves backwards.
 */
export interface OffsetTracker {
  /** Records that a message was received (call in delivery order, before handing it off). */
  track(topic: string, partition: number, offset: bigint, leaderEpoch?: number): void;
  /**
   * Records that a message finished (handled, or dead-lettered). Returns the new commit position when it
   * moved forward, otherwise `undefined`. Unknown offsets are ignored.
   */
  finish(topic: string, partition: number, offset: bigint): OffsetCommit | undefined;
  /** The commit position of a partition right now, if anything was tracked. */
  position(topic: string, partition: number): bigint | undefined;
  /** Unfinished messages over all partitions. */
  readonly pending: number;
  /** Forgets a partition (revoked); later finishes of its offsets are ignored. */
  forget(topic: string, partition: number): void;
}

interface PartitionState {
  readonly topic: string;
  readonly partition: number;
  /** Unfinished offsets, sorted ascending (duplicates allowed). */
  readonly unfinished: bigint[];
  /** Highest delivered offset. */
  highest: bigint;
  /** Last position returned by `finish`. */
  committed: bigint;
  leaderEpoch: number;
}

/** Index of the first element >= `offset` in a sorted array. */
function lowerBound(a: readonly bigint[], offset: bigint): number {
  let lo = 0;
  let hi = a.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if ((a[mid] as bigint) < offset) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** Creates an {@link OffsetTracker}. */
export function createOffsetTracker(): OffsetTracker {
  const partitions = new Map<string, PartitionState>();
  let pending = 0;
  const id = (topic: string, partition: number) => `${topic}\u0000${partition}`;
  const positionOf = (s: PartitionState): bigint =>
    s.unfinished.length > 0 ? (s.unfinished[0] as bigint) : s.highest + 1n;

  return {
    track(topic, partition, offset, leaderEpoch = -1) {
      const key = id(topic, partition);
      let s = partitions.get(key);
      if (s === undefined) {
        // committing the first offset itself would be a no-op
        s = { topic, partition, unfinished: [], highest: offset, committed: offset, leaderEpoch };
        partitions.set(key, s);
      }
      const u = s.unfinished;
      if (u.length === 0 || (u[u.length - 1] as bigint) <= offset) u.push(offset);
      else u.splice(lowerBound(u, offset), 0, offset); // a redelivery behind newer offsets
      if (offset > s.highest) s.highest = offset;
      s.leaderEpoch = leaderEpoch;
      pending++;
    },
    finish(topic, partition, offset) {
      const s = partitions.get(id(topic, partition));
      if (s === undefined) return undefined;
      const u = s.unfinished;
      const i = lowerBound(u, offset);
      if (i >= u.length || u[i] !== offset) return undefined;
      u.splice(i, 1);
      pending--;
      const position = positionOf(s);
      if (position <= s.committed) return undefined;
      s.committed = position;
      return { topic: s.topic, partition: s.partition, offset: position, leaderEpoch: s.leaderEpoch };
    },
    position(topic, partition) {
      const s = partitions.get(id(topic, partition));
      return s === undefined ? undefined : positionOf(s);
    },
    get pending() {
      return pending;
    },
    forget(topic, partition) {
      const key = id(topic, partition);
      const s = partitions.get(key);
      if (s === undefined) return;
      pending -= s.unfinished.length;
      partitions.delete(key);
    },
  };
}

/**
 * Commits offsets one request at a time, merging what arrives meanwhile (the highest position per
 * partition wins), so concurrent commits never race and a lower offset never overwrites a higher one.
 * A failed commit keeps its offsets for the next attempt (unless a newer one replaced them).
 */
export interface CommitQueue {
  /** Queues a position and starts a commit unless one is in flight (then it joins the next one). */
  add(commit: OffsetCommit): void;
  /** Waits for the in-flight commit, then commits what is still queued (one more attempt) and waits. */
  flush(): Promise<void>;
  /** Positions waiting to be committed. */
  readonly queued: number;
}

/** Creates a {@link CommitQueue} over a commit function (the Kafka consumer's `commit`). */
export function createCommitQueue(
  commit: (offsets: OffsetCommit[]) => Promise<void>,
  onError: (error: unknown, offsets: readonly OffsetCommit[]) => void,
): CommitQueue {
  const queued = new Map<string, OffsetCommit>();
  let inflight: Promise<void> | undefined;
  const id = (c: OffsetCommit) => `${c.topic}\u0000${c.partition}`;

  const merge = (c: OffsetCommit) => {
    const key = id(c);
    const current = queued.get(key);
    if (current === undefined || current.offset < c.offset) queued.set(key, c);
  };

  const run = async (): Promise<void> => {
    while (queued.size > 0) {
      const batch = [...queued.values()];
      queued.clear();
      try {
        await commit(batch);
      } catch (error) {
        for (const c of batch) merge(c);
        onError(error, batch);
        return; // retried on the next add() or flush()
      }
    }
  };

  const start = (): Promise<void> => {
    if (inflight === undefined) {
      inflight = run().finally(() => {
        inflight = undefined;
      });
    }
    return inflight;
  };

  return {
    add(c) {
      merge(c);
      void start();
    },
    async flush() {
      if (inflight !== undefined) await inflight;
      if (queued.size > 0) await start();
    },
    get queued() {
      return queued.size;
    },
  };
}
