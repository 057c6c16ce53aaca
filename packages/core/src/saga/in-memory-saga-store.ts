import { ConfigurationError } from '../errors/cqrs-error.ts';
import type { InMemoryOutboxStore } from '../outbox/in-memory-outbox-store.ts';
import { SagaConflictError } from './saga-errors.ts';
import type {
  SagaAcquire,
  SagaCommit,
  SagaCountQuery,
  SagaCreate,
  SagaListQuery,
  SagaLogEntry,
  SagaRecord,
  SagaRecoveryQuery,
  SagaRelease,
  SagaRenew,
  SagaStatus,
  SagaStore,
} from './saga-store.ts';
import { SAGA_STATUSES } from './saga-store.ts';

/** Options of {@link createInMemorySagaStore}. */
export interface InMemorySagaStoreOptions {
  /** Stage step events in this outbox atomically with the step's commit (`capabilities.outbox`). */
  readonly outbox?: InMemoryOutboxStore;
}

/** The in-memory {@link SagaStore}, with a few inspection helpers for tests. */
export interface InMemorySagaStore extends SagaStore {
  /** Number of saga rows. */
  readonly size: number;
  /** Deletes every row. */
  clear(): void;
}

type Row = { -readonly [K in keyof SagaRecord]: SagaRecord[K] };

/**
 * A {@link SagaStore} in process memory: for tests, benchmarks and single-process apps that accept losing sagas
 * on a crash. Operations are atomic (no await between guard and write) and return frozen snapshots.
 */
export function createInMemorySagaStore(options: InMemorySagaStoreOptions = {}): InMemorySagaStore {
  const outbox = options.outbox;
  const rows = new Map<string, Row>();
  const logs = new Map<string, SagaLogEntry[]>();
  let seq = 0;

  const snapshot = (r: Row): SagaRecord => Object.freeze({ ...r });
  const leaseFree = (r: Row, owner: string, now: number) =>
    r.leaseOwner === null || r.leaseOwner === owner || (r.leaseUntil !== null && r.leaseUntil < now);
  const guard = (w: { id: string; owner: string; expectedVersion: number }): Row => {
    const r = rows.get(w.id);
    if (r === undefined) throw new SagaConflictError(w.id, 'not found');
    if (r.version !== w.expectedVersion) {
      throw new SagaConflictError(w.id, `version ${r.version}, expected ${w.expectedVersion}`);
    }
    if (r.leaseOwner !== w.owner) throw new SagaConflictError(w.id, `lease is not held by ${w.owner}`);
    return r;
  };
  const nameFilter = (names: readonly string[] | undefined) =>
    names === undefined ? () => true : (r: Row) => names.includes(r.name);

  return {
    capabilities: Object.freeze({ outbox: outbox !== undefined }),
    get size() {
      return rows.size;
    },
    clear() {
      rows.clear();
      logs.clear();
    },
    async create(input: SagaCreate) {
      if (rows.has(input.id)) throw new SagaConflictError(input.id, 'already exists');
      rows.set(input.id, {
        id: input.id,
        name: input.name,
        definitionVersion: input.definitionVersion,
        status: 'running',
        context: input.context,
        cursor: 0,
        version: 1,
        attempts: 1,
        error: null,
        leaseOwner: input.owner,
        leaseUntil: input.now + input.leaseMs,
        deadlineAt: input.deadlineAt,
        createdAt: input.now,
        updatedAt: input.now,
      });
    },
    async commit(w: SagaCommit) {
      const events = w.events ?? [];
      if (events.length > 0 && outbox === undefined) {
        throw new ConfigurationError('this saga store has no outbox: configure one to commit step events');
      }
      guard(w);
      const tx = events.length > 0 ? outbox!.begin() : undefined;
      if (tx !== undefined) {
        try {
          await outbox!.append(tx, events);
        } catch (error) {
          tx.rollback();
          throw error;
        }
      }
      // Re-check after the await: another commit may have won meanwhile.
      let r: Row;
      try {
        r = guard(w);
      } catch (error) {
        tx?.rollback();
        throw error;
      }
      tx?.commit();
      r.status = w.status;
      r.context = w.context;
      r.cursor = w.cursor;
      r.error = w.error;
      r.version = w.expectedVersion + 1;
      r.updatedAt = w.now;
      if (w.lease === 'release') {
        r.leaseOwner = null;
        r.leaseUntil = null;
      } else if (typeof w.lease === 'number') r.leaseUntil = w.now + w.lease;
      else {
        r.leaseOwner = null;
        r.leaseUntil = w.lease.retryAt;
      }
      if (w.log.length > 0) {
        let log = logs.get(w.id);
        if (log === undefined) {
          log = [];
          logs.set(w.id, log);
        }
        for (const entry of w.log) log.push(Object.freeze({ ...entry, seq: ++seq, sagaId: w.id }));
      }
      return r.version;
    },
    async acquire(request: SagaAcquire) {
      const r = rows.get(request.id);
      if (r === undefined || !leaseFree(r, request.owner, request.now)) return undefined;
      if (request.expectedVersion !== undefined && r.version !== request.expectedVersion) return undefined;
      r.leaseOwner = request.owner;
      r.leaseUntil = request.now + request.leaseMs;
      r.version++;
      r.attempts++;
      r.updatedAt = request.now;
      return snapshot(r);
    },
    async renew(request: SagaRenew) {
      const r = rows.get(request.id);
      if (r === undefined || r.version !== request.expectedVersion || r.leaseOwner !== request.owner)
        return false;
      r.leaseUntil = request.now + request.leaseMs;
      return true;
    },
    async release(request: SagaRelease) {
      const r = rows.get(request.id);
      if (r === undefined || r.version !== request.expectedVersion || r.leaseOwner !== request.owner)
        return false;
      r.leaseOwner = null;
      r.leaseUntil = null;
      return true;
    },
    async load(id: string) {
      const r = rows.get(id);
      return r === undefined ? undefined : snapshot(r);
    },
    async history(id: string) {
      return [...(logs.get(id) ?? [])];
    },
    async findRecoverable(query: SagaRecoveryQuery) {
      const staleBefore = query.now - (query.staleAfterMs ?? 0);
      const named = nameFilter(query.names);
      const out: Row[] = [];
      for (const r of rows.values()) {
        if (r.status === 'running' || r.status === 'compensating') {
          if (r.leaseOwner !== null && r.leaseUntil !== null && r.leaseUntil >= query.now) continue;
        } else if (r.status === 'compensation_failed') {
          if (r.leaseUntil === null || r.leaseUntil >= query.now) continue;
        } else continue;
        if (r.updatedAt > staleBefore || !named(r)) continue;
        if (query.maxAttempts !== undefined && r.attempts >= query.maxAttempts) continue;
        out.push(r);
      }
      out.sort((a, b) => a.updatedAt - b.updatedAt || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
      return out.slice(0, query.limit).map(snapshot);
    },
    async count(query: SagaCountQuery = {}) {
      const named = nameFilter(query.names);
      const counts = Object.fromEntries(SAGA_STATUSES.map((s) => [s, 0])) as Record<SagaStatus, number>;
      for (const r of rows.values()) if (named(r)) counts[r.status]++;
      return counts;
    },
    async list(query: SagaListQuery) {
      const named = nameFilter(query.names);
      const out: Row[] = [];
      for (const r of rows.values()) {
        if (query.statuses !== undefined && !query.statuses.includes(r.status)) continue;
        if (!named(r) || (query.afterId !== undefined && r.id <= query.afterId)) continue;
        out.push(r);
      }
      out.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
      return out.slice(0, query.limit).map(snapshot);
    },
  };
}
