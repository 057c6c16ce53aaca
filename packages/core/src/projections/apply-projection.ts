import { ConfigurationError } from '../errors/cqrs-error.ts';
import type { AnyEvent } from '../messages/message.ts';
import type { AnyProjection, ProjectionBatchItem, ProjectionContext } from './projection.ts';
import type { DocumentWrite, ProjectionStore } from './projection-store.ts';

/** The event at `index` of a batch failed to apply (or to decode). @internal */
export class ApplyFailure extends Error {
  readonly index: number;
  /** `false`: `applyBatch` failed for events `0..index`; applying them one per call names the failing one. */
  readonly located: boolean;
  constructor(index: number, cause: unknown, located = true) {
    super('projection apply failed', { cause });
    this.index = index;
    this.located = located;
  }
}

/** One event to apply, or the reason it could not be decoded. @internal */
export interface ProjectionItem {
  readonly event: AnyEvent | { readonly failed: unknown };
  readonly context: ProjectionContext;
}

/**
 * Applies events to a projection in `tx`, in order: a batch projection's `apply` per event; a document
 * projection reads the documents the events belong to once, evolves them in memory and writes each changed one
 * once. @throws ApplyFailure naming the first event that failed. @internal
 */
export async function applyProjection<TTx>(
  def: AnyProjection<TTx>,
  store: Pick<ProjectionStore<TTx>, 'readDocuments' | 'writeDocuments'>,
  tx: TTx,
  items: readonly ProjectionItem[],
  oneByOne = false,
): Promise<void> {
  if (def.style === 'batch' && def.applyBatch !== undefined && !oneByOne) {
    // One call for the events before the first that could not be decoded (that one fails on its own).
    let end = items.findIndex((item) => 'failed' in item.event);
    if (end === -1) end = items.length;
    if (end > 0) {
      try {
        await def.applyBatch(
          end === items.length
            ? (items as readonly ProjectionBatchItem[])
            : (items.slice(0, end) as ProjectionBatchItem[]),
          tx,
        );
      } catch (error) {
        throw end === 1 ? new ApplyFailure(0, error) : new ApplyFailure(end - 1, error, false);
      }
    }
    if (end < items.length) throw new ApplyFailure(end, (items[end]!.event as { failed: unknown }).failed);
    return;
  }
  if (def.style === 'batch') {
    for (let i = 0; i < items.length; i++) {
      const { event, context } = items[i]!;
      if ('failed' in event) throw new ApplyFailure(i, event.failed);
      try {
        await def.apply(event, tx, context);
      } catch (error) {
        throw new ApplyFailure(i, error);
      }
    }
    return;
  }
  const ids: (string | undefined)[] = [];
  for (let i = 0; i < items.length; i++) {
    const { event } = items[i]!;
    if ('failed' in event) throw new ApplyFailure(i, event.failed);
    try {
      const id = def.documentId(event);
      if (id !== undefined && (typeof id !== 'string' || id.length === 0 || id.length > 255))
        throw new ConfigurationError(`${def.name}: documentId must return 1 to 255 characters or undefined`);
      ids.push(id);
    } catch (error) {
      throw new ApplyFailure(i, error);
    }
  }
  const wanted = [...new Set(ids.filter((id): id is string => id !== undefined))];
  if (wanted.length === 0) return;
  const key = { name: def.name, version: items[0]!.context.version };
  const stored = await store.readDocuments(tx, key, wanted);
  const state = new Map<string, { doc: unknown; version: number; changed: boolean }>();
  for (const [id, d] of stored) state.set(id, { doc: JSON.parse(d.doc), version: d.version, changed: false });
  for (let i = 0; i < items.length; i++) {
    const id = ids[i];
    if (id === undefined) continue;
    const current = state.get(id);
    try {
      const next = def.evolve(current?.doc ?? null, items[i]!.event as AnyEvent, items[i]!.context);
      if (next === undefined)
        throw new ConfigurationError(`${def.name}: evolve returned undefined (return null to delete)`);
      state.set(id, { doc: next, version: (current?.version ?? 0) + 1, changed: true });
    } catch (error) {
      throw new ApplyFailure(i, error);
    }
  }
  const writes: DocumentWrite[] = [];
  for (const [id, d] of state) {
    if (d.changed)
      writes.push({ id, doc: d.doc === null ? null : JSON.stringify(d.doc), version: d.version });
  }
  if (writes.length > 0) await store.writeDocuments(tx, key, writes);
}
