import { ConfigurationError } from '../errors/cqrs-error.ts';
import type { DocumentProjection } from './projection.ts';
import type { ProjectionStore } from './projection-store.ts';

/** Reads the documents of a document projection, from the version that serves reads. */
export interface DocumentReader<TDoc> {
  /** The document, or `undefined` when there is none. */
  get(id: string): Promise<TDoc | undefined>;
  /** The documents found, by id. */
  getMany(ids: readonly string[]): Promise<ReadonlyMap<string, TDoc>>;
}

/**
 * Reads a document projection's documents from its active version (the one a side-by-side rebuild switched
 * to), or from its own version before any runner created the checkpoint row.
 * @throws ConfigurationError for a store or projection of the wrong kind
 */
export function createDocumentReader<TTx, TDoc>(
  store: Pick<ProjectionStore<TTx>, 'load' | 'readDocuments'>,
  projection: DocumentProjection<TDoc>,
): DocumentReader<TDoc> {
  if (typeof store?.readDocuments !== 'function' || typeof store.load !== 'function')
    throw new ConfigurationError('createDocumentReader() takes a projection store');
  if (projection?.style !== 'document')
    throw new ConfigurationError('createDocumentReader() takes a projection from defineDocumentProjection()');
  const getMany = async (ids: readonly string[]) => {
    if (!Array.isArray(ids) || ids.some((id) => typeof id !== 'string'))
      throw new ConfigurationError('getMany() takes a list of document ids');
    const active = await store.load(projection.name);
    const version = active?.version ?? projection.version;
    const found = await store.readDocuments(undefined, { name: projection.name, version }, ids);
    const out = new Map<string, TDoc>();
    for (const [id, d] of found) out.set(id, JSON.parse(d.doc) as TDoc);
    return out;
  };
  return Object.freeze({
    async get(id: string) {
      if (typeof id !== 'string') throw new ConfigurationError('get() takes a document id');
      return (await getMany([id])).get(id);
    },
    getMany,
  });
}
