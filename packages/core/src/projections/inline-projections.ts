import { ConfigurationError, ProcessingError } from '../errors/cqrs-error.ts';
import type { AnyEvent } from '../messages/message.ts';
import type { InlineProjector } from '../unit-of-work/unit-of-work.ts';
import { ApplyFailure, applyProjection } from './apply-projection.ts';
import type { AnyProjection } from './projection.ts';
import type { ProjectionStore } from './projection-store.ts';

/** Options of {@link createInlineProjections}. */
export interface InlineProjectionsOptions<TTx> {
  /** Keeps the documents of document projections, in the unit of work's database. */
  readonly store: Pick<ProjectionStore<TTx>, 'readDocuments' | 'writeDocuments'>;
  readonly projections: readonly AnyProjection<TTx>[];
}

/**
 * Projections applied inside the unit of work's transaction, before its commit: a command's handler and the
 * query that follows it read the same state (read-your-writes on one database). A failing projection fails
 * the command, which rolls back. Give the result to the unit of work as its `projections` option.
 *
 * @example
 * const unitOfWork = createPostgresUnitOfWork({ client: pool, outbox, projections: createInlineProjections({ store, projections: [orderView] }) });
 * @throws ConfigurationError for a malformed option or two projections with one name
 */
export function createInlineProjections<TTx>(options: InlineProjectionsOptions<TTx>): InlineProjector<TTx> {
  const store = options?.store;
  if (typeof store?.readDocuments !== 'function' || typeof store.writeDocuments !== 'function')
    throw new ConfigurationError('inline projections: store must be a projection store');
  const projections = options.projections;
  if (!Array.isArray(projections) || projections.length === 0)
    throw new ConfigurationError('inline projections: projections must list at least one projection');
  const names = new Set<string>();
  const byType = new Map<string, AnyProjection<TTx>[]>();
  for (const p of projections) {
    if (p?.style !== 'batch' && p?.style !== 'document')
      throw new ConfigurationError('inline projections: projections must come from defineProjection()');
    if (names.has(p.name))
      throw new ConfigurationError(`inline projections: two projections named ${p.name}`);
    names.add(p.name);
    for (const t of p.types) byType.set(t, [...(byType.get(t) ?? []), p]);
  }
  return Object.freeze({
    async apply(tx: TTx, events: readonly AnyEvent[]) {
      for (const p of projections) {
        const mine = events.filter((e) => byType.get(e.type)?.includes(p));
        if (mine.length === 0) continue;
        try {
          await applyProjection(
            p,
            store,
            tx,
            mine.map((event) => ({
              event,
              context: {
                projection: p.name,
                version: p.version,
                position: undefined,
                streamId: null,
                streamVersion: null,
              },
            })),
          );
        } catch (error) {
          if (!(error instanceof ApplyFailure)) throw error;
          const event = mine[error.located ? error.index : 0]!;
          const what = error.located ? event.type : `a batch of ${error.index + 1} events`;
          throw new ProcessingError(
            event.type,
            error.cause,
            `inline projection ${p.name} failed on ${what}; the command rolled back`,
          );
        }
      }
    },
  });
}
