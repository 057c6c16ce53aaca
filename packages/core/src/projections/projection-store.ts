/**
 * The storage port of projections: checkpoints with a lease, JSON documents and parked events, in the database
 * of the read model, so a batch of events, its read-model writes and the checkpoint commit in one transaction.
 * @module
 */

/** A projection version's row: where it is, who runs it, and whether it serves reads. */
export interface ProjectionCheckpoint {
  readonly name: string;
  readonly version: number;
  /** The log position of the last event applied (or scanned past), `'0'` before the first. */
  readonly position: string;
  /** `stopped` after a poison event (see `error`) until `resume`. */
  readonly state: 'running' | 'stopped';
  /** `true` for the version that serves reads (documents are read from it). */
  readonly active: boolean;
  readonly leaseOwner: string | null;
  /** Lease expiry, epoch ms. */
  readonly leaseUntil: number | null;
  /** The last poison event, as JSON text of a {@link PoisonReport}; kept after a skip. */
  readonly error: string | null;
  /** Time the checkpoint last moved, epoch ms. */
  readonly updatedAt: number;
}

/** A failing event, as the status shows it. */
export interface PoisonReport {
  readonly eventType: string;
  readonly eventId: string;
  readonly position: string;
  readonly error: string;
  readonly attempts: number;
  /** What the runner did with it. */
  readonly outcome: 'stopped' | 'skipped' | 'parked';
  /** Epoch ms. */
  readonly at: number;
}

/** An event a `park` projection left out. */
export interface ParkedEvent {
  readonly eventId: string;
  readonly eventType: string;
  readonly position: string;
  readonly error: string;
  readonly at: number;
}

/** Which projection version a call is about. */
export interface ProjectionKey {
  readonly name: string;
  readonly version: number;
}

/** Arguments of {@link ProjectionStore.acquire}. */
export interface ProjectionAcquire extends ProjectionKey {
  readonly owner: string;
  readonly now: number;
  readonly leaseMs: number;
}

/** Arguments of {@link ProjectionStore.advance}. */
export interface ProjectionAdvance extends ProjectionAcquire {
  /** The position the runner read from: the write is refused unless the row is still there. */
  readonly from: string;
  readonly to: string;
}

/** A stored document. */
export interface StoredDocument {
  /** JSON text. */
  readonly doc: string;
  /** 1 for a new document, +1 per change. */
  readonly version: number;
}

/** One document write: `doc: null` deletes it. */
export interface DocumentWrite {
  readonly id: string;
  readonly doc: string | null;
  readonly version: number;
}

/**
 * Checkpoints, leases, documents and parked events of projections over one database. Methods without `tx` run
 * on the store's own connection, each atomic on its own.
 * @typeParam TTx - the transaction handle the storage package's unit of work hands out.
 */
export interface ProjectionStore<TTx> {
  /** Names the store in errors, e.g. `postgres projection store`. */
  readonly name: string;
  /** Runs `work` in one transaction: commits when it resolves, rolls back and rethrows when it rejects. */
  transaction<TResult>(work: (tx: TTx) => Promise<TResult>): Promise<TResult>;
  /**
   * Creates the row when missing (`active` when no other version of the name exists), then takes the lease
   * when it is free, expired or already `owner`'s. Resolves to the row when taken, `undefined` when another
   * owner holds a live lease.
   */
  acquire(request: ProjectionAcquire): Promise<ProjectionCheckpoint | undefined>;
  /**
   * In `tx`, first of the batch's writes: moves the checkpoint from `from` to `to` and extends the lease, when
   * `owner` holds it and the row is still at `from`. `false` (nothing changed) otherwise: roll back.
   */
  advance(tx: TTx, request: ProjectionAdvance): Promise<boolean>;
  /** Extends a held lease; `false` when `owner` no longer holds it. */
  renew(request: ProjectionAcquire): Promise<boolean>;
  /** Clears `owner`'s lease. */
  release(request: ProjectionKey & { readonly owner: string }): Promise<boolean>;
  /** Records a poison report; `stop` also sets the state to `stopped`. Needs `owner`'s lease. */
  report(
    request: ProjectionKey & { readonly owner: string; readonly error: string; readonly stop: boolean },
  ): Promise<boolean>;
  /** Sets a stopped projection running again (from its checkpoint: the poison event is retried). */
  resume(request: ProjectionKey): Promise<boolean>;
  /** In `tx`: position `'0'`, state `running`, no error (in-place rebuild). Needs `owner`'s lease. */
  restart(tx: TTx, request: ProjectionKey & { readonly owner: string }): Promise<boolean>;
  /** Makes `version` the one that serves reads, and no other version of the name (one statement). */
  activate(request: ProjectionKey): Promise<void>;
  /** The row of `version`, or of the active version when none is given. */
  load(name: string, version?: number): Promise<ProjectionCheckpoint | undefined>;
  /** Documents by id (`tx` to read in a transaction, `undefined` for the store's connection). */
  readDocuments(
    tx: TTx | undefined,
    key: ProjectionKey,
    ids: readonly string[],
  ): Promise<ReadonlyMap<string, StoredDocument>>;
  writeDocuments(tx: TTx, key: ProjectionKey, writes: readonly DocumentWrite[]): Promise<void>;
  /** Deletes every document and parked event of a version (in-place rebuild, or dropping an old version). */
  clear(tx: TTx, key: ProjectionKey): Promise<void>;
  park(tx: TTx, key: ProjectionKey, event: ParkedEvent): Promise<void>;
  parked(key: ProjectionKey): Promise<readonly ParkedEvent[]>;
}
