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
});

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

/**
 * Reads correlation and trace context from inbound headers (names are case-insensitive). Unsafe or
 * malformed values are ignored. Falls back to the trace id of `traceparent`, then a new UUID v7, for the
 * correlation id. The result feeds {@link runWithContext}.
 */
export function extractContext(headers: HeaderSource): ContextInit & { correlationId: string } {
  const correlation = readHeader(headers, CORRELATION_HEADERS.correlationId);
  const causation = readHeader(headers, CORRELATION_HEADERS.causationId);
  const rawTrace = readHeader(headers, CORRELATION_HEADERS.traceparent);
  const trace = parseTraceparent(rawTrace);
  const tracestate = readHeader(headers, CORRELATION_HEADERS.tracestate);
  const out: { -readonly [K in keyof ContextInit]: ContextInit[K] } & { correlationId: string } = {
    correlationId: isSafeId(correlation) ? correlation : (trace?.traceId ?? uuidv7()),
  };
  if (isSafeId(causation)) out.causationId = causation;
  if (trace && rawTrace) {
    out.traceparent = rawTrace.trim().toLowerCase();
    if (typeof tracestate === 'string' && tracestate.length <= 512) out.tracestate = tracestate;
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
  return target;
}
