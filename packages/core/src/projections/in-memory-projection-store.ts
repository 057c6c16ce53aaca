import { ConfigurationError } from '../errors/cqrs-error.ts';
import { StorageError } from '../errors/storage-error.ts';
import type { InMemoryTransaction } from '../unit-of-work/in-memory-unit-of-work.ts';
import type {
  DocumentWrite,
  ParkedEvent,
  ProjectionCheckpoint,
  ProjectionKey,
  ProjectionStore,
  StoredDocument,
} from './projection-store.ts';

/** The in-memory {@link ProjectionStore}, over the in-memory unit of work's transactions. */
export interface InMemoryProjectionStore extends ProjectionStore<InMemoryTransaction> {
  /** The committed documents of a version, by id (parsed JSON), for tests. */
  documents(key: ProjectionKey): ReadonlyMap<string, unknown>;
}

interface Tx extends InMemoryTransaction {
  readonly undo: (() => void)[];
}

const rowKey = (k: ProjectionKey) => `${k.name}\u0000${k.version}`;

/**
 * Projection checkpoints, documents and parked events in process memory: the embedded default and the test
 * double of the database stores. Writes apply when the transaction commits (`onCommit`), so a document write
 * made in an in-memory unit of work rolls back with it; the checkpoint guard of `advance` holds across
 * concurrent runners as a row lock would.
 */
export function createInMemoryProjectionStore(): InMemoryProjectionStore {
  const rows = new Map<string, ProjectionCheckpoint>();
  const docs = new Map<string, Map<string, StoredDocument>>();
  const parkedEvents = new Map<string, ParkedEvent[]>();
  const docsOf = (k: ProjectionKey) => {
    let m = docs.get(rowKey(k));
    if (m === undefined) {
      m = new Map();
      docs.set(rowKey(k), m);
    }
    return m;
  };
  const update = (k: ProjectionKey, patch: Partial<ProjectionCheckpoint>) => {
    const row = rows.get(rowKey(k))!;
    rows.set(rowKey(k), { ...row, ...patch });
  };
  const held = (k: ProjectionKey, owner: string) => rows.get(rowKey(k))?.leaseOwner === owner;
  const txs = new WeakSet<object>();
  const isOwn = (tx: unknown): tx is Tx => typeof tx === 'object' && tx !== null && txs.has(tx);
  const onCommit = (tx: InMemoryTransaction, apply: () => void) => {
    if (typeof tx?.onCommit !== 'function')
      throw new ConfigurationError('in-memory projection store: tx must be an in-memory transaction');
    tx.onCommit(apply);
  };

  const store: InMemoryProjectionStore = {
    name: 'in-memory projection store',
    async transaction(work) {
      const commits: (() => void)[] = [];
      let open = true;
      const tx: Tx = {
        undo: [],
        onCommit(apply) {
          if (!open) throw new StorageError('closed-transaction', 'the in-memory transaction has ended');
          commits.push(apply);
        },
      };
      txs.add(tx);
      try {
        const result = await work(tx);
        open = false;
        for (const c of commits) c();
        return result;
      } catch (error) {
        open = false;
        for (const u of tx.undo.reverse()) u();
        throw error;
      }
    },
    async acquire({ name, version, owner, now, leaseMs }) {
      const k = rowKey({ name, version });
      let row = rows.get(k);
      if (row === undefined) {
        const others = [...rows.values()].some((r) => r.name === name);
        row = {
          name,
          version,
          position: '0',
          state: 'running',
          active: !others,
          leaseOwner: null,
          leaseUntil: null,
          error: null,
          updatedAt: now,
        };
      }
      if (row.leaseOwner !== null && row.leaseOwner !== owner && (row.leaseUntil ?? 0) >= now) {
        rows.set(k, row);
        return undefined;
      }
      row = { ...row, leaseOwner: owner, leaseUntil: now + leaseMs };
      rows.set(k, row);
      return row;
    },
    async advance(tx, { name, version, owner, from, to, now, leaseMs }) {
      if (!isOwn(tx)) throw new ConfigurationError('advance() takes a transaction of this store');
      const row = rows.get(rowKey({ name, version }));
      if (row === undefined || row.leaseOwner !== owner || row.position !== from) return false;
      update({ name, version }, { position: to, leaseUntil: now + leaseMs, updatedAt: now });
      tx.undo.push(() => update({ name, version }, { position: from, updatedAt: row.updatedAt }));
      return true;
    },
    async renew({ name, version, owner, now, leaseMs }) {
      if (!held({ name, version }, owner)) return false;
      update({ name, version }, { leaseUntil: now + leaseMs });
      return true;
    },
    async release({ name, version, owner }) {
      if (!held({ name, version }, owner)) return false;
      update({ name, version }, { leaseOwner: null, leaseUntil: null });
      return true;
    },
    async report({ name, version, owner, error, stop }) {
      if (!held({ name, version }, owner)) return false;
      update({ name, version }, stop ? { error, state: 'stopped' } : { error });
      return true;
    },
    async resume(key) {
      if (!rows.has(rowKey(key))) return false;
      update(key, { state: 'running' });
      return true;
    },
    async restart(tx, { name, version, owner }) {
      if (!isOwn(tx)) throw new ConfigurationError('restart() takes a transaction of this store');
      const row = rows.get(rowKey({ name, version }));
      if (row === undefined || row.leaseOwner !== owner) return false;
      update({ name, version }, { position: '0', state: 'running', error: null });
      tx.undo.push(() =>
        update({ name, version }, { position: row.position, state: row.state, error: row.error }),
      );
      return true;
    },
    async activate({ name, version }) {
      for (const [k, r] of rows) if (r.name === name) rows.set(k, { ...r, active: r.version === version });
    },
    async load(name, version) {
      if (version !== undefined) return rows.get(rowKey({ name, version }));
      return [...rows.values()].find((r) => r.name === name && r.active);
    },
    async readDocuments(_tx, key, ids) {
      const m = docs.get(rowKey(key));
      const out = new Map<string, StoredDocument>();
      if (m !== undefined)
        for (const id of ids) {
          const d = m.get(id);
          if (d !== undefined) out.set(id, d);
        }
      return out;
    },
    async writeDocuments(tx, key, writes: readonly DocumentWrite[]) {
      const copy = writes.map((w) => ({ ...w }));
      onCommit(tx, () => {
        const m = docsOf(key);
        for (const w of copy) {
          if (w.doc === null) m.delete(w.id);
          else m.set(w.id, { doc: w.doc, version: w.version });
        }
      });
    },
    async clear(tx, key) {
      onCommit(tx, () => {
        docs.delete(rowKey(key));
        parkedEvents.delete(rowKey(key));
      });
    },
    async park(tx, key, event) {
      const copy = { ...event };
      onCommit(tx, () => {
        const list = parkedEvents.get(rowKey(key)) ?? [];
        if (!list.some((p) => p.eventId === copy.eventId)) list.push(copy);
        parkedEvents.set(rowKey(key), list);
      });
    },
    async parked(key) {
      return [...(parkedEvents.get(rowKey(key)) ?? [])];
    },
    documents(key) {
      const out = new Map<string, unknown>();
      for (const [id, d] of docs.get(rowKey(key)) ?? []) out.set(id, JSON.parse(d.doc));
      return out;
    },
  };
  return store;
}
