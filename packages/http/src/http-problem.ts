import type { CqrsErrorCode, ValidationIssue } from '@cqrs-ts/core';
import { isCqrsError } from '@cqrs-ts/core';

/** An RFC 9457 problem details body (`application/problem+json`). */
export interface ProblemDetails {
  readonly type: string;
  readonly title: string;
  readonly status: number;
  readonly detail?: string;
  /** The request id (also sent as `x-request-id`). */
  readonly instance: string;
  /** The cqrs-ts error code, or `HTTP_<status>` for a user's domain error. */
  readonly code: string;
  /** Every field issue of a validation problem, `pointer` being a JSON pointer into the request's payload. */
  readonly errors?: readonly ProblemIssue[];
  readonly [extension: string]: unknown;
}

/** One field issue of a validation problem. */
export interface ProblemIssue {
  readonly pointer: string;
  readonly message: string;
  readonly code: string;
}

/** A row of {@link HTTP_PROBLEMS}: the status and the last segment of the problem `type`. */
export interface ProblemEntry {
  readonly status: number;
  readonly slug: string;
  readonly title: string;
}

/**
 * What a user's domain error declares to be answered with its own status and type: give the error a `problem`
 * property. `status` must be 400 to 599; the error's message is the `detail` of a 4xx answer (never of a 5xx).
 */
export interface ProblemDeclaration {
  readonly status: number;
  /** A URI reference naming the problem type, e.g. `https://example.com/problems/out-of-stock`. */
  readonly type: string;
  readonly title: string;
}

/**
 * The one table from cqrs-ts error codes to HTTP answers. Every code has a row: `null` rows are errors a client
 * cannot cause (a mistake of the application or an outage) and are answered as an unexpected error (500, no
 * detail). Authorization answers 401 instead of 403 when the request carried no principal.
 */
export const HTTP_PROBLEMS = Object.freeze({
  CQRS_VALIDATION: { status: 400, slug: 'validation', title: 'The request is invalid' },
  CQRS_SERIALIZATION: { status: 400, slug: 'malformed', title: 'The request body is not valid JSON' },
  CQRS_INVALID_MESSAGE: { status: 400, slug: 'malformed', title: 'The request body is not valid JSON' },
  CQRS_AUTHORIZATION: { status: 403, slug: 'forbidden', title: 'Not allowed' },
  CQRS_NOT_FOUND: { status: 404, slug: 'not-found', title: 'Not found' },
  CQRS_CONCURRENCY: { status: 409, slug: 'concurrency', title: 'Changed by another request' },
  CQRS_IDEMPOTENCY_IN_FLIGHT: {
    status: 409,
    slug: 'idempotency-in-flight',
    title: 'A request with this Idempotency-Key is still running',
  },
  CQRS_IDEMPOTENCY_CONFLICT: {
    status: 422,
    slug: 'idempotency-conflict',
    title: 'The Idempotency-Key was used with another request',
  },
  CQRS_PAYLOAD_TOO_LARGE: { status: 413, slug: 'too-large', title: 'The request body is too large' },
  CQRS_TIMEOUT: { status: 504, slug: 'timeout', title: 'The request timed out' },
  CQRS_CIRCUIT_OPEN: { status: 503, slug: 'unavailable', title: 'A dependency is unavailable' },
  CQRS_CANCELLED: { status: 503, slug: 'cancelled', title: 'The request was cancelled' },
  CQRS_HANDLER_NOT_FOUND: null,
  CQRS_DUPLICATE_HANDLER: null,
  CQRS_MISSING_HANDLER: null,
  CQRS_WRONG_MESSAGE_KIND: null,
  CQRS_PROCESSING: null,
  CQRS_UNKNOWN_MESSAGE_TYPE: null,
  CQRS_CONFIGURATION: null,
  CQRS_EVENT_DISPATCH: null,
  CQRS_EVENT_DEPTH_EXCEEDED: null,
  CQRS_NO_HANDLER_ANSWERED: null,
  CQRS_OUTBOX: null,
  CQRS_STORAGE: null,
  CQRS_ENVELOPE: null,
  CQRS_BROKER: null,
  CQRS_SAGA: null,
} satisfies Record<CqrsErrorCode, ProblemEntry | null>);

const UNEXPECTED: ProblemEntry = { status: 500, slug: 'internal', title: 'Internal server error' };

/** A problem with the headers it needs (`Retry-After`). */
export interface ProblemReply {
  readonly problem: ProblemDetails;
  readonly headers: Readonly<Record<string, string>> | undefined;
  /** True for a 500 answering an error no row or declaration covers: report it, it is a bug or an outage. */
  readonly unexpected: boolean;
}

/** Options of {@link toProblem}. */
export interface ToProblemOptions {
  /** Prefix of the problem `type` of the table's rows. @default 'urn:cqrs-ts:problem:' */
  readonly typeBase?: string;
  /** True when the request carried no principal: authorization failures are then 401. */
  readonly anonymous?: boolean;
  /** True when the request carried `If-Match`: a concurrency failure is then 412 (precondition failed). */
  readonly precondition?: boolean;
}

function pointer(path: readonly (string | number)[]): string {
  let out = '';
  for (const segment of path) out += `/${String(segment).replaceAll('~', '~0').replaceAll('/', '~1')}`;
  return out;
}

function declared(error: unknown): ProblemDeclaration | undefined {
  if (typeof error !== 'object' || error === null || !(error instanceof Error)) return undefined;
  const p = (error as { problem?: unknown }).problem;
  if (typeof p !== 'object' || p === null) return undefined;
  const { status, type, title } = p as Record<string, unknown>;
  if (typeof status !== 'number' || !Number.isInteger(status) || status < 400 || status > 599)
    return undefined;
  if (typeof type !== 'string' || type.length === 0 || typeof title !== 'string') return undefined;
  return { status, type, title };
}

/**
 * Answers an error as problem details, from {@link HTTP_PROBLEMS} or the error's own {@link ProblemDeclaration}.
 * Anything else is a 500 whose body carries no message and no stack, only the request id as `instance`.
 */
export function toProblem(error: unknown, requestId: string, options: ToProblemOptions = {}): ProblemReply {
  const base = options.typeBase ?? 'urn:cqrs-ts:problem:';
  if (isCqrsError(error)) {
    const entry = HTTP_PROBLEMS[error.code] ?? UNEXPECTED;
    if (entry === UNEXPECTED) return unexpected(base, requestId);
    let status = entry.status;
    let slug = entry.slug;
    let title = entry.title;
    if (error.code === 'CQRS_AUTHORIZATION' && options.anonymous === true) {
      status = 401;
      slug = 'unauthorized';
      title = 'Authentication required';
    } else if (error.code === 'CQRS_CONCURRENCY' && options.precondition === true) {
      status = 412;
      slug = 'precondition-failed';
      title = 'The resource changed since the version in If-Match';
    }
    const body: Record<string, unknown> = {
      type: base + slug,
      title,
      status,
      instance: requestId,
      code: error.code,
    };
    // 5xx answers name the problem only: their messages may name internal dependencies.
    if (status < 500) body.detail = error.message;
    let headers: Record<string, string> | undefined;
    if (error.code === 'CQRS_VALIDATION') {
      const issues = (error as { issues?: readonly ValidationIssue[] }).issues ?? [];
      body.errors = issues
        .filter((i) => i.severity !== 'warning')
        .map((i) => ({ pointer: pointer(i.path), message: i.message, code: i.code }));
    } else if (error.code === 'CQRS_CIRCUIT_OPEN') {
      const ms = (error as { retryAfterMs?: number }).retryAfterMs;
      if (typeof ms === 'number') {
        const seconds = Math.max(1, Math.ceil(ms / 1000));
        headers = { 'retry-after': String(seconds) };
        body.retryAfter = seconds;
      }
    }
    return { problem: body as unknown as ProblemDetails, headers, unexpected: false };
  }
  const own = declared(error);
  if (own !== undefined) {
    const body: Record<string, unknown> = {
      type: own.type,
      title: own.title,
      status: own.status,
      instance: requestId,
      code: `HTTP_${own.status}`,
    };
    if (own.status < 500) body.detail = (error as Error).message;
    return { problem: body as unknown as ProblemDetails, headers: undefined, unexpected: false };
  }
  return unexpected(base, requestId);
}

function unexpected(base: string, requestId: string): ProblemReply {
  return {
    problem: {
      type: base + UNEXPECTED.slug,
      title: UNEXPECTED.title,
      status: UNEXPECTED.status,
      instance: requestId,
      code: 'HTTP_500',
    },
    headers: undefined,
    unexpected: true,
  };
}
