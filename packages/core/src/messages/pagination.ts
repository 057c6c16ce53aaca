import type { ValidationIssue } from '../errors/cqrs-error.ts';
import { ConfigurationError, ValidationError } from '../errors/cqrs-error.ts';
import type { DefineOptions, QueryDefinition } from './define-message.ts';
import { createDefinition } from './define-message.ts';
import type { Query } from './message.ts';
import type { StandardSchemaV1 } from './standard-schema.ts';

/** The paging fields every paginated query carries. */
export interface PageRequest {
  /** 1-based page number. */
  readonly page: number;
  /** Items per page, between 1 and the query's `maxPageSize`. */
  readonly pageSize: number;
}

/** Derived paging values for a data store. */
export interface Pagination extends PageRequest {
  readonly offset: number;
  readonly limit: number;
}

/** One page of results. */
export interface Page<TItem> {
  readonly items: readonly TItem[];
  readonly page: number;
  readonly pageSize: number;
  readonly total: number;
  readonly totalPages: number;
  readonly hasNext: boolean;
  readonly hasPrevious: boolean;
}

/** Options of {@link definePaginatedQuery}. */
export interface PaginatedQueryOptions<TPayload, TMessage> extends DefineOptions<TPayload, TMessage> {
  /** Largest page size accepted. Default 100. */
  readonly maxPageSize?: number;
}

export const DEFAULT_MAX_PAGE_SIZE = 100;

function pagingInvariant(type: string, maxPageSize: number): (payload: Record<string, unknown>) => void {
  return (payload) => {
    const issues: ValidationIssue[] = [];
    const { page, pageSize } = payload;
    if (typeof page !== 'number' || !Number.isInteger(page) || page < 1) {
      issues.push({ path: ['page'], message: 'page must be an integer >= 1', code: 'too_small' });
    }
    if (typeof pageSize !== 'number' || !Number.isInteger(pageSize) || pageSize < 1) {
      issues.push({ path: ['pageSize'], message: 'pageSize must be an integer >= 1', code: 'too_small' });
    } else if (pageSize > maxPageSize) {
      issues.push({
        path: ['pageSize'],
        message: `pageSize must be at most ${maxPageSize}`,
        code: 'too_big',
      });
    }
    if (issues.length > 0) throw new ValidationError(type, issues);
  };
}

type Out<TSchema extends StandardSchemaV1> = StandardSchemaV1.InferOutput<TSchema>;
type In<TSchema extends StandardSchemaV1> = StandardSchemaV1.InferInput<TSchema>;

/**
 * Defines a query whose payload carries `page` (>= 1) and `pageSize` (1..maxPageSize). Out-of-range values are a
 * {@link ValidationError} at creation, never clamped. Use {@link pagination} for the offset.
 */
export function definePaginatedQuery<const TType extends string, TSchema extends StandardSchemaV1>(
  type: TType,
  options: PaginatedQueryOptions<
    Out<TSchema> & PageRequest,
    Query<TType, Out<TSchema> & PageRequest, unknown>
  > & {
    readonly schema: TSchema;
  },
): QueryDefinition<TType, Out<TSchema> & PageRequest, unknown, In<TSchema> & PageRequest>;
export function definePaginatedQuery<const TType extends string>(
  type: TType,
  options?: PaginatedQueryOptions<PageRequest, Query<TType, PageRequest, unknown>> & {
    readonly schema?: undefined;
  },
): QueryDefinition<TType, PageRequest, unknown, PageRequest>;
export function definePaginatedQuery(type: string, rawOptions?: object): unknown {
  const options = rawOptions as PaginatedQueryOptions<unknown, never> | undefined;
  const max = options?.maxPageSize ?? DEFAULT_MAX_PAGE_SIZE;
  if (!Number.isInteger(max) || max < 1)
    throw new ConfigurationError(`${type}: maxPageSize must be an integer >= 1`);
  return createDefinition('query', type, options, pagingInvariant(type, max));
}

/** Offset and limit of a paginated query (or of its payload). */
export function pagination(query: PageRequest | { readonly payload: PageRequest }): Pagination {
  const p = 'payload' in query ? query.payload : query;
  return { page: p.page, pageSize: p.pageSize, offset: (p.page - 1) * p.pageSize, limit: p.pageSize };
}

/** Builds a {@link Page} from the items of one page and the total count. */
export function toPage<TItem>(items: readonly TItem[], total: number, request: PageRequest): Page<TItem> {
  const totalPages = request.pageSize > 0 ? Math.ceil(total / request.pageSize) : 0;
  return {
    items,
    page: request.page,
    pageSize: request.pageSize,
    total,
    totalPages,
    hasNext: request.page < totalPages,
    hasPrevious: request.page > 1,
  };
}
