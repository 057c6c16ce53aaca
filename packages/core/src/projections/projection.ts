import { ConfigurationError } from '../errors/cqrs-error.ts';
import type { AnyEvent } from '../messages/message.ts';

/**
 * Projections: read models built from the event log. A projection names the event types it reads and applies
 * each event, in log order, either with writes of its own (batch style: {@link defineProjection}) or by
 * evolving JSON documents the store keeps (document style: {@link defineDocumentProjection}).
 * @module
 */

/** Longest projection name, in UTF-16 code units. */
export const MAX_PROJECTION_NAME_LENGTH = 120;
/** Largest projection version. */
export const MAX_PROJECTION_VERSION = 1_000_000;
const NAME_RE = /^[a-z0-9][a-z0-9._-]*$/i;

/** Where the event being applied sits. */
export interface ProjectionContext {
  /** The projection's name and version being built (a side-by-side rebuild builds version N+1). */
  readonly projection: string;
  readonly version: number;
  /** The event's log position; `undefined` for an inline projection (applied before the event has one). */
  readonly position: string | undefined;
  /** The event's stream and stream version, `null` for an event appended to the outbox alone. */
  readonly streamId: string | null;
  readonly streamVersion: number | null;
}

/** Something that names an event type: a definition from `defineEvent` or the type string itself. */
export type EventTypeRef = string | { readonly type: string };

interface ProjectionBase {
  readonly name: string;
  /** Bump it to build the read model anew side by side (see `rebuild`). @default 1 */
  readonly version: number;
  /** The event types applied, in the order given. */
  readonly types: readonly string[];
  /** What to do with an event that still fails after the retries. @default 'stop' */
  readonly onPoison: PoisonPolicy;
}

/**
 * - `stop`: the projection stops at the event and reports it (type, id, error) in its status.
 * - `skip`: the event is left out, reported in the status, and the projection goes on.
 * - `park`: like `skip`, and the event is kept in the store's parked list for an operator.
 */
export const POISON_POLICIES = ['stop', 'skip', 'park'] as const;
export type PoisonPolicy = (typeof POISON_POLICIES)[number];

/** One event of a batch handed to `applyBatch`, with where it sits. */
export interface ProjectionBatchItem {
  readonly event: AnyEvent;
  readonly context: ProjectionContext;
}

/** A batch-style projection: `apply` writes the read model itself, in the transaction it is handed. */
export interface BatchProjection<TTx> extends ProjectionBase {
  readonly style: 'batch';
  apply(event: AnyEvent, tx: TTx, context: ProjectionContext): Promise<void> | void;
  /** Writes a whole batch at once (e.g. one multi-row upsert); runners use it instead of `apply` when given. */
  applyBatch?(items: readonly ProjectionBatchItem[], tx: TTx): Promise<void> | void;
  /** Empties the read model of `version` (in-place rebuild). */
  reset?(tx: TTx, version: number): Promise<void> | void;
}

/** A document-style projection: each event evolves the JSON document it belongs to. */
export interface DocumentProjection<TDoc> extends ProjectionBase {
  readonly style: 'document';
  /** The document an event belongs to; `undefined` leaves the event out. */
  documentId(event: AnyEvent): string | undefined;
  /** The next state of the document (`null`: none yet); returning `null` deletes it. Pure: no I/O. */
  evolve(document: TDoc | null, event: AnyEvent, context: ProjectionContext): TDoc | null;
}

/** Any projection over transactions `TTx`. */
// biome-ignore lint/suspicious/noExplicitAny: the document type does not matter to runners
export type AnyProjection<TTx = any> = BatchProjection<TTx> | DocumentProjection<unknown>;

interface CommonDefinition {
  readonly name: string;
  readonly version?: number;
  /** Event types (definitions or type strings), 1 to 100. */
  readonly events: readonly EventTypeRef[];
  readonly onPoison?: PoisonPolicy;
}

/** Arguments of {@link defineProjection}: `apply`, `applyBatch` or both. */
export interface BatchProjectionDefinition<TTx> extends CommonDefinition {
  /** Writes what one event changes, in `tx`, idempotently (an upsert keyed by the event's data). */
  apply?(event: AnyEvent, tx: TTx, context: ProjectionContext): Promise<void> | void;
  /**
   * Writes what a batch of events changes, in log order, in `tx` (fast rebuilds: one multi-row upsert per
   * batch instead of a statement per event). When it throws for a batch of several events, the runner applies
   * them again one per call, in a new transaction, to find the failing event (its retries and poison policy).
   */
  applyBatch?(items: readonly ProjectionBatchItem[], tx: TTx): Promise<void> | void;
  reset?(tx: TTx, version: number): Promise<void> | void;
}

/** Arguments of {@link defineDocumentProjection}. */
export interface DocumentProjectionDefinition<TDoc> extends CommonDefinition {
  documentId(event: AnyEvent): string | undefined;
  evolve(document: TDoc | null, event: AnyEvent, context: ProjectionContext): TDoc | null;
}

function common(def: CommonDefinition, what: string): ProjectionBase {
  if (def === null || typeof def !== 'object')
    throw new ConfigurationError(`${what} takes a definition object`);
  checkProjectionName(def.name, what);
  const version = def.version ?? 1;
  checkProjectionVersion(version, `${what} ${def.name}`);
  const events = def.events as unknown;
  if (!Array.isArray(events) || events.length === 0 || events.length > 100)
    throw new ConfigurationError(`${what} ${def.name}: events must list 1 to 100 event types`);
  const types = events.map((e: unknown) => {
    const type = typeof e === 'string' ? e : (e as { type?: unknown } | null)?.type;
    if (typeof type !== 'string' || type.length === 0 || type.length > 255)
      throw new ConfigurationError(`${what} ${def.name}: events must be event definitions or type names`);
    return type;
  });
  const onPoison = def.onPoison ?? 'stop';
  if (!POISON_POLICIES.includes(onPoison))
    throw new ConfigurationError(
      `${what} ${def.name}: onPoison must be one of ${POISON_POLICIES.join(', ')}`,
    );
  return { name: def.name, version, types: Object.freeze([...new Set(types)]), onPoison };
}

/** @throws ConfigurationError unless `name` is 1 to 120 letters, digits, `.`, `_` or `-`. */
export function checkProjectionName(name: unknown, what: string): string {
  if (typeof name !== 'string' || name.length > MAX_PROJECTION_NAME_LENGTH || !NAME_RE.test(name))
    throw new ConfigurationError(
      `${what}: a projection name is 1 to ${MAX_PROJECTION_NAME_LENGTH} letters, digits, '.', '_' or '-'`,
    );
  return name;
}

/** @throws ConfigurationError unless `version` is an integer from 1 to {@link MAX_PROJECTION_VERSION}. */
export function checkProjectionVersion(version: unknown, what: string): number {
  if (
    !Number.isSafeInteger(version) ||
    (version as number) < 1 ||
    (version as number) > MAX_PROJECTION_VERSION
  )
    throw new ConfigurationError(`${what}: version must be an integer from 1 to ${MAX_PROJECTION_VERSION}`);
  return version as number;
}

/**
 * A batch-style projection: `apply` writes the read model with the transaction it is handed, which also
 * writes the checkpoint (async runner) or the command's changes (inline), so each event is applied once.
 *
 * @example
 * const orderList = defineProjection<pg.PoolClient>({
 *   name: 'order-list',
 *   events: [OrderPlaced],
 *   apply: (e, tx) => tx.query('INSERT INTO order_list (id, total) VALUES ($1, $2) ON CONFLICT (id) DO UPDATE SET total = $2', [...]),
 * });
 * @throws ConfigurationError for a malformed definition
 */
export function defineProjection<TTx>(definition: BatchProjectionDefinition<TTx>): BatchProjection<TTx> {
  const base = common(definition, 'defineProjection()');
  const { apply, applyBatch, reset } = definition;
  if (apply !== undefined && typeof apply !== 'function')
    throw new ConfigurationError(`defineProjection() ${base.name}: apply must be a function`);
  if (applyBatch !== undefined && typeof applyBatch !== 'function')
    throw new ConfigurationError(`defineProjection() ${base.name}: applyBatch must be a function`);
  if (apply === undefined && applyBatch === undefined)
    throw new ConfigurationError(`defineProjection() ${base.name}: give apply, applyBatch or both`);
  if (reset !== undefined && typeof reset !== 'function')
    throw new ConfigurationError(`defineProjection() ${base.name}: reset must be a function`);
  return Object.freeze({
    ...base,
    style: 'batch' as const,
    apply:
      apply !== undefined
        ? (event: AnyEvent, tx: TTx, context: ProjectionContext) => apply(event, tx, context)
        : (event: AnyEvent, tx: TTx, context: ProjectionContext) => applyBatch!([{ event, context }], tx),
    ...(applyBatch !== undefined
      ? { applyBatch: (items: readonly ProjectionBatchItem[], tx: TTx) => applyBatch(items, tx) }
      : {}),
    ...(reset !== undefined ? { reset: (tx: TTx, version: number) => reset(tx, version) } : {}),
  });
}

/**
 * A document-style projection: the store keeps one JSON document per id with a version, and the runner hands
 * `evolve` the current document and the event.
 *
 * @example
 * const orderView = defineDocumentProjection<{ status: string }>({
 *   name: 'order-view',
 *   events: [OrderPlaced, OrderShipped],
 *   documentId: (e) => (e.payload as { orderId: string }).orderId,
 *   evolve: (doc, e) => (e.type === OrderPlaced.type ? { status: 'placed' } : { ...doc!, status: 'shipped' }),
 * });
 * @throws ConfigurationError for a malformed definition
 */
export function defineDocumentProjection<TDoc>(
  definition: DocumentProjectionDefinition<TDoc>,
): DocumentProjection<TDoc> {
  const base = common(definition, 'defineDocumentProjection()');
  if (typeof definition.documentId !== 'function' || typeof definition.evolve !== 'function')
    throw new ConfigurationError(
      `defineDocumentProjection() ${base.name}: documentId and evolve must be functions`,
    );
  const { documentId, evolve } = definition;
  return Object.freeze({
    ...base,
    style: 'document' as const,
    documentId: (event: AnyEvent) => documentId(event),
    evolve: (doc: TDoc | null, event: AnyEvent, context: ProjectionContext) => evolve(doc, event, context),
  });
}
