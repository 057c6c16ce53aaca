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
    if (issues.length === 0) {
      const problem = offsetProblem(page as number, pageSize as number);
      if (problem !== undefined) issues.push({ path: ['page'], message: problem, code: 'too_big' });
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
  return createDefinition('query', type, options, pagingInvariant(type, max), false, max);
}

/** Why a page's offset would not be exact, or `undefined`. */
function offsetProblem(page: number, pageSize: number): string | undefined {
  if (!Number.isSafeInteger((page - 1) * pageSize))
    return `page ${page} is too large: its offset (page - 1) * pageSize is beyond ${Number.MAX_SAFE_INTEGER}`;
  return undefined;
}

function pageRequest(value: unknown, where: string): PageRequest {
  const p = (typeof value === 'object' && value !== null && 'payload' in value ? value.payload : value) as
    | Partial<PageRequest>
    | undefined;
  const page = p?.page;
  const pageSize = p?.pageSize;
  const problem =
    typeof page !== 'number' || !Number.isSafeInteger(page) || page < 1
      ? 'page must be an integer >= 1'
      : typeof pageSize !== 'number' || !Number.isSafeInteger(pageSize) || pageSize < 1
        ? 'pageSize must be an integer >= 1'
        : offsetProblem(page, pageSize);
  if (problem !== undefined)
    throw new ValidationError(where, [{ path: ['page'], message: problem, code: 'invalid_page' }]);
  return { page: page as number, pageSize: pageSize as number };
}

/**
 * Offset and limit of a paginated query (or of its payload).
 * @throws ValidationError (`CQRS_VALIDATION`) for a page or page size that is not a positive integer, or a page
 *   whose offset is not a safe integer.
 */
export function pagination(query: PageRequest | { readonly payload: PageRequest }): Pagination {
  const p = pageRequest(query, 'pagination');
  return { page: p.page, pageSize: p.pageSize, offset: (p.page - 1) * p.pageSize, limit: p.pageSize };
}

/**
 * Builds a {@link Page} from the items of one page and the total count.
 * @throws ValidationError (`CQRS_VALIDATION`) for a malformed request or a total that is not a non-negative
 *   safe integer.
 */
export function toPage<TItem>(items: readonly TItem[], total: number, request: PageRequest): Page<TItem> {
  pageRequest(request, 'toPage');
  if (!Array.isArray(items))
    throw new ValidationError('toPage', [
      { path: ['items'], message: 'items must be an array', code: 'invalid_type' },
    ]);
  if (!(Number.isSafeInteger(total) && total >= 0))
    throw new ValidationError('toPage', [
      { path: ['total'], message: 'total must be an integer >= 0', code: 'invalid_type' },
    ]);
  const totalPages = Math.ceil(total / request.pageSize);
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
