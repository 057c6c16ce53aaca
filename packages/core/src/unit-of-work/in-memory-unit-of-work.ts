import { ConfigurationError } from '../errors/cqrs-error.ts';
import { StorageError } from '../errors/storage-error.ts';
import type { InMemoryOutboxStore, InMemoryOutboxTransaction } from '../outbox/in-memory-outbox-store.ts';
import { createInMemoryOutboxStore, linkInMemoryTransaction } from '../outbox/in-memory-outbox-store.ts';
import type { IdempotencyRecord, IdempotencyStore } from './idempotency.ts';
import type { InlineProjector, UnitOfWork } from './unit-of-work.ts';
import { createUnitOfWork } from './unit-of-work.ts';

/** The transaction handlers get from an in-memory unit of work. */
export interface InMemoryTransaction {
  /**
   * Runs `apply` if and when the unit commits, in registration order: how a handler's in-memory state changes
   * commit or roll back with its events. Nothing registered runs for a rolled-back unit.
   */
  onCommit(apply: () => void): void;
}

interface TxState {
  readonly outbox: InMemoryOutboxTransaction;
  readonly commits: (() => void)[];
  /** Run after the commit or the rollback (releases idempotency claims). */
  readonly ends: (() => void)[];
  open: boolean;
}

const states = new WeakMap<InMemoryTransaction, TxState>();

function stateOf(tx: InMemoryTransaction): TxState {
  const state = states.get(tx);
  if (state === undefined) throw new ConfigurationError('not a transaction of an in-memory unit of work');
  if (!state.open) throw new StorageError('closed-transaction', 'the in-memory transaction has ended');
  return state;
}

/** The in-memory {@link IdempotencyStore}, with a view of its records for tests. */
export interface InMemoryIdempotencyStore extends IdempotencyStore<InMemoryTransaction> {
  /** Number of committed records. */
  readonly size: number;
  /** Forgets every record (not the claims in progress). */
  clear(): void;
}

/**
 * Idempotency records in process memory: a claim holds its key until its transaction ends, and a second claim
 * of the key waits for it, as a database row lock would. A claim of a key the same transaction holds gets the
 * record it wrote so far (a replay once its result is stored), as a database read in the transaction would.
 */
export function createInMemoryIdempotencyStore(): InMemoryIdempotencyStore {
  const committed = new Map<string, IdempotencyRecord>();
  const claims = new Map<
    string,
    { readonly tx: InMemoryTransaction; readonly fingerprint: string; readonly ended: Promise<void> }
  >();
  return {
    get size() {
      return committed.size;
    },
    clear() {
      committed.clear();
    },
    async find(id) {
      return committed.get(id);
    },
    async claim(tx, id, fingerprint) {
      for (;;) {
        const state = stateOf(tx);
        const done = committed.get(id);
        if (done !== undefined) return done;
        const held = claims.get(id);
        if (held === undefined) {
          let release!: () => void;
          const ended = new Promise<void>((resolve) => (release = resolve));
          claims.set(id, { tx, fingerprint, ended });
          state.ends.push(() => {
            claims.delete(id);
            release();
          });
          state.commits.push(() => {
            const result = pending.get(tx)?.get(id);
            if (result !== undefined) committed.set(id, { fingerprint, result });
          });
          return undefined;
        }
        // Claimed earlier in this transaction: its record as the transaction sees it, like a database row.
        if (held.tx === tx)
          return { fingerprint: held.fingerprint, result: pending.get(tx)?.get(id) ?? null };
        await held.ended;
      }
    },
    async complete(tx, id, result) {
      stateOf(tx);
      if (claims.get(id)?.tx !== tx)
        throw new StorageError('unknown', `idempotency id ${id} is not claimed by this transaction`);
      let results = pending.get(tx);
      if (results === undefined) {
        results = new Map();
        pending.set(tx, results);
      }
      results.set(id, result);
    },
  };
}

const pending = new WeakMap<InMemoryTransaction, Map<string, string>>();

/** Options of {@link createInMemoryUnitOfWork}. */
export interface InMemoryUnitOfWorkOptions {
  /** Where events are appended on commit. @default a new in-memory outbox store */
  readonly outbox?: InMemoryOutboxStore;
  /** Idempotency records; `false` refuses commands that carry a key. @default a new in-memory store */
  readonly idempotency?: InMemoryIdempotencyStore | false;
  /** Largest serialized result kept for replay, in UTF-8 bytes. @default 1 MiB */
  readonly maxResultBytes?: number;
  /** Inline projections applied in each unit's transaction (see `createInlineProjections`). */
  readonly projections?: InlineProjector<InMemoryTransaction>;
  /** Reads an idempotency record before the transaction (see `UnitOfWorkStoreOptions`). @default false */
  readonly readBeforeClaim?: boolean;
}

/** An in-memory unit of work, with its stores. */
export interface InMemoryUnitOfWork extends UnitOfWork<InMemoryTransaction> {
  readonly outbox: InMemoryOutboxStore;
  readonly idempotency: InMemoryIdempotencyStore | undefined;
}

/**
 * The unit of work in process memory: the embedded default, and the test double of the database ones. It
 * behaves as they do (events appended on commit, in-process handlers after it, nested commands joining,
 * idempotent replays, the same refusals), with no durability: a crash loses everything.
 *
 * @example
 * const unitOfWork = createInMemoryUnitOfWork();
 * const mediator = createMediator({
 *   behaviors: [unitOfWork],
 *   handlers: [handle(PlaceOrder, (cmd, ctx) => {
 *     unitOfWork.transaction(ctx).onCommit(() => orders.set(cmd.payload.id, cmd.payload));
 *     ctx.emit(OrderPlaced, { id: cmd.payload.id });
 *   })],
 * });
 */
export function createInMemoryUnitOfWork(options: InMemoryUnitOfWorkOptions = {}): InMemoryUnitOfWork {
  const outbox = options.outbox ?? createInMemoryOutboxStore();
  if (typeof outbox?.begin !== 'function')
    throw new ConfigurationError('in-memory unit of work: outbox must be an in-memory outbox store');
  const idempotency =
    options.idempotency === false ? undefined : (options.idempotency ?? createInMemoryIdempotencyStore());
  const behavior = createUnitOfWork<InMemoryTransaction>({
    name: 'in-memory unit of work',
    resource: outbox,
    transactions: {
      async run(work) {
        const state: TxState = { outbox: outbox.begin(), commits: [], ends: [], open: true };
        const tx: InMemoryTransaction = {
          onCommit(apply) {
            if (typeof apply !== 'function') throw new ConfigurationError('onCommit() takes a function');
            stateOf(tx).commits.push(apply);
          },
        };
        states.set(tx, state);
        // the in-memory event store and state repositories write in the unit's outbox transaction
        linkInMemoryTransaction(tx, state.outbox);
        try {
          const result = await work(tx);
          state.outbox.commit();
          for (const apply of state.commits) apply();
          return result;
        } catch (error) {
          state.outbox.rollback();
          throw error;
        } finally {
          state.open = false;
          for (const end of state.ends) end();
        }
      },
    },
    outbox: { append: (tx, events) => outbox.append(stateOf(tx).outbox, events) },
    ...(idempotency !== undefined ? { idempotency } : {}),
    ...(options.maxResultBytes !== undefined ? { maxResultBytes: options.maxResultBytes } : {}),
    ...(options.projections !== undefined ? { projections: options.projections } : {}),
    ...(options.readBeforeClaim !== undefined ? { readBeforeClaim: options.readBeforeClaim } : {}),
  });
  return Object.freeze({ ...behavior, outbox, idempotency });
}
