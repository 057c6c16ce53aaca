import { ConfigurationError, ValidationError } from '../errors/cqrs-error.ts';
import { uuidv7 } from '../shared/uuid.ts';
import type { AmbientContext, ContextInit } from './ambient-context.ts';
import { currentContext } from './ambient-context.ts';

/** Header names written and read by the helpers below (lower-case; reads are case-insensitive). */
export const CORRELATION_HEADERS = Object.freeze({
  correlationId: 'x-correlation-id',
  causationId: 'x-causation-id',
  requestId: 'x-request-id',
  traceparent: 'traceparent',
  tracestate: 'tracestate',
  baggage: 'baggage',
});

/** Longest W3C `baggage` value cqrs-ts carries, in characters (the W3C limit for the whole header). */
export const MAX_BAGGAGE_LENGTH = 8192;
const BAGGAGE_RE = /^[\x20-\x7e]+$/;

/** True for a W3C `baggage` value cqrs-ts carries: 1 to 8192 printable ASCII characters (spaces allowed). */
export function isBaggage(value: unknown): value is string {
  return (
    typeof value === 'string' &&
    value.length > 0 &&
    value.length <= MAX_BAGGAGE_LENGTH &&
    BAGGAGE_RE.test(value)
  );
}

/** Anything headers come in: a Fetch `Headers`, a Node `IncomingHttpHeaders`, or a plain record. */
export type HeaderSource =
  | { get(name: string): string | null | undefined }
  | Readonly<Record<string, string | readonly string[] | undefined>>;

/** A parsed W3C `traceparent` header. */
export interface TraceParent {
  readonly version: string;
  readonly traceId: string;
  readonly parentId: string;
  readonly flags: number;
}

const TRACEPARENT_RE = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$/;
const MAX_ID = 256;
// Printable ASCII without spaces: keeps ids safe to echo back in headers and logs.
const SAFE_ID_RE = /^[\x21-\x7e]+$/;

/** Parses a W3C `traceparent`; returns `undefined` for anything malformed (all-zero ids included). */
export function parseTraceparent(value: string | undefined | null): TraceParent | undefined {
  if (typeof value !== 'string' || value.length > 512) return undefined;
  const m = TRACEPARENT_RE.exec(value.trim().toLowerCase());
  if (!m) return undefined;
  const [, version, traceId, parentId, flags, rest] = m as unknown as [
    string,
    string,
    string,
    string,
    string,
    string?,
  ];
  if (version === 'ff' || (version === '00' && rest !== undefined)) return undefined;
  if (/^0+$/.test(traceId) || /^0+$/.test(parentId)) return undefined;
  return { version, traceId, parentId, flags: Number.parseInt(flags, 16) };
}

const CANONICAL_TRACEPARENT_RE = /^00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$/;
const ZERO_TRACE_ID = '00000000000000000000000000000000';
const ZERO_PARENT_ID = '0000000000000000';

/**
 * `parseTraceparent(value) !== undefined` without the parse: the canonical form (version 00, lower case, 55 chars)
 * is checked in place, anything else goes through {@link parseTraceparent}. @internal
 */
export function isTraceparent(value: string | undefined | null): boolean {
  if (typeof value === 'string' && value.length === 55 && CANONICAL_TRACEPARENT_RE.test(value))
    return value.slice(3, 35) !== ZERO_TRACE_ID && value.slice(36, 52) !== ZERO_PARENT_ID;
  return parseTraceparent(value) !== undefined;
}

/** Formats a W3C `traceparent` header. */
export function formatTraceparent(trace: Pick<TraceParent, 'traceId' | 'parentId' | 'flags'>): string {
  return `00-${trace.traceId}-${trace.parentId}-${(trace.flags & 0xff).toString(16).padStart(2, '0')}`;
}

/** True when the value is safe to use as a correlation or causation id (printable, at most 256 chars). */
export function isSafeId(value: unknown): value is string {
  return typeof value === 'string' && value.length > 0 && value.length <= MAX_ID && SAFE_ID_RE.test(value);
}

function readHeader(headers: HeaderSource, name: string): string | undefined {
  if (typeof (headers as { get?: unknown }).get === 'function') {
    const v = (headers as { get(name: string): string | null | undefined }).get(name);
    return v ?? undefined;
  }
  const record = headers as Readonly<Record<string, string | readonly string[] | undefined>>;
  let v = record[name];
  if (v === undefined) {
    for (const key of Object.keys(record)) {
      if (key.toLowerCase() === name) {
        v = record[key];
        break;
      }
    }
  }
  if (Array.isArray(v)) return v[0];
  return v as string | undefined;
}

/** An inbound header whose value failed validation and was not used. */
export interface InvalidHeader {
  /** The header's (lower-case) name, e.g. `x-correlation-id`. */
  readonly header: string;
  /** Why it was not used. The value itself is not repeated: it is untrusted input. */
  readonly reason: string;
}

/** Options of {@link extractContext}. */
export interface ExtractContextOptions {
  /**
   * What happens to a header that is present but fails validation (an unsafe correlation id, a malformed
   * `traceparent`): `warn` reports it to `onInvalid` and goes on without it; `throw` fails with a
   * `ValidationError` listing every such header (answer the request with 400). @default 'warn'
   */
  readonly invalid?: 'warn' | 'throw';
  /** Receives each invalid header in `warn` mode. @default a process warning (`CqrsHeaderWarning`) naming it */
  readonly onInvalid?: (invalid: InvalidHeader) => void;
  /**
   * Read the W3C `baggage` header too, so its key-value pairs travel with the messages created in the request
   * (opt-in: baggage is application data a client chose, and goes on to every consumer). @default false
   */
  readonly baggage?: boolean;
}

function warnInvalid(invalid: InvalidHeader): void {
  process.emitWarning(`ignored inbound header ${invalid.header}: ${invalid.reason}`, {
    type: 'CqrsHeaderWarning',
    code: 'CQRS_VALIDATION',
  });
}

/**
 * Reads correlation and trace context from inbound headers (names are case-insensitive). A header that is
 * present but invalid (unsafe characters, more than 256 chars, a malformed `traceparent`) is not used, and is
 * reported: to `onInvalid` (by default a process warning naming the header), or as a `ValidationError` with
 * `invalid: 'throw'`. Without a usable correlation id, falls back to the trace id of `traceparent`, then a new
 * UUID v7. The result feeds {@link runWithContext}.
 * @throws ValidationError (`CQRS_VALIDATION`) with `invalid: 'throw'`, one issue per invalid header;
 *   ConfigurationError (`CQRS_CONFIGURATION`) when `headers` is not a headers object.
 */
export function extractContext(
  headers: HeaderSource,
  options: ExtractContextOptions = {},
): ContextInit & { correlationId: string } {
  if (typeof headers !== 'object' || headers === null)
    throw new ConfigurationError(
      'extractContext takes the request headers: a Fetch Headers, a Node IncomingHttpHeaders or a plain record',
    );
  const invalid: InvalidHeader[] = [];
  const check = (header: string, value: string | undefined, ok: boolean, reason: string): boolean => {
    if (value === undefined) return false;
    if (!ok) invalid.push({ header, reason });
    return ok;
  };
  const H = CORRELATION_HEADERS;
  const correlation = readHeader(headers, H.correlationId);
  const causation = readHeader(headers, H.causationId);
  const rawTrace = readHeader(headers, H.traceparent);
  const trace = parseTraceparent(rawTrace);
  const tracestate = readHeader(headers, H.tracestate);
  const idRule = 'not 1 to 256 printable ASCII characters without spaces';
  const out: { -readonly [K in keyof ContextInit]: ContextInit[K] } & { correlationId: string } = {
    correlationId: check(H.correlationId, correlation, isSafeId(correlation), idRule)
      ? (correlation as string)
      : (trace?.traceId ?? uuidv7()),
  };
  if (check(H.causationId, causation, isSafeId(causation), idRule)) out.causationId = causation as string;
  if (
    check(
      H.traceparent,
      rawTrace,
      trace !== undefined,
      'not a W3C traceparent (00-<32 hex>-<16 hex>-<2 hex>)',
    )
  ) {
    out.traceparent = (rawTrace as string).trim().toLowerCase();
    if (
      check(
        H.tracestate,
        tracestate,
        typeof tracestate === 'string' && tracestate.length <= 512,
        'longer than 512 characters',
      )
    )
      out.tracestate = tracestate as string;
  }
  if (options.baggage === true) {
    const baggage = readHeader(headers, H.baggage);
    if (check(H.baggage, baggage, isBaggage(baggage), 'not 1 to 8192 printable ASCII characters'))
      out.baggage = baggage as string;
  }
  if (invalid.length > 0) {
    if (options.invalid === 'throw') {
      throw new ValidationError(
        'inbound headers',
        invalid.map((i) => ({
          path: ['headers', i.header],
          message: `${i.header} is ${i.reason}`,
          code: 'invalid_header',
        })),
      );
    }
    const report = options.onInvalid ?? warnInvalid;
    for (const i of invalid) report(i);
  }
  return out;
}

/**
 * Writes the ambient (or given) context into outbound headers and returns them. Pass a Fetch `Headers`
 * or a plain record; a new record is created when none is given.
 */
export function injectContext<THeaders extends Record<string, string> | Headers = Record<string, string>>(
  headers?: THeaders,
  context: AmbientContext | undefined = currentContext(),
): THeaders {
  const target = (headers ?? {}) as THeaders;
  if (!context) return target;
  const set =
    typeof (target as Headers).set === 'function'
      ? (k: string, v: string) => (target as Headers).set(k, v)
      : (k: string, v: string) => {
          (target as Record<string, string>)[k] = v;
        };
  set(CORRELATION_HEADERS.correlationId, context.correlationId);
  if (context.requestId) set(CORRELATION_HEADERS.causationId, context.requestId);
  if (context.traceparent) set(CORRELATION_HEADERS.traceparent, context.traceparent);
  if (context.tracestate) set(CORRELATION_HEADERS.tracestate, context.tracestate);
  if (context.baggage) set(CORRELATION_HEADERS.baggage, context.baggage);
  return target;
}
