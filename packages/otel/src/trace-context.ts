/**
 * W3C trace context to and from OpenTelemetry span contexts, without the global propagator (an app that set
 * none still gets its messages linked). @internal
 * @module
 */
import type { SpanContext, TraceState } from '@opentelemetry/api';

const TRACEPARENT = /^00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$/;
const ZERO_TRACE = '00000000000000000000000000000000';
const ZERO_SPAN = '0000000000000000';

/** The remote span context of a `traceparent` (and `tracestate`), `undefined` when malformed. */
export function remoteSpanContext(
  traceparent: string | undefined,
  tracestate: string | undefined,
): SpanContext | undefined {
  if (traceparent === undefined) return undefined;
  // fixed positions once the pattern matched: cheaper than capture groups, once per message
  if (!TRACEPARENT.test(traceparent)) return undefined;
  const traceId = traceparent.slice(3, 35);
  const spanId = traceparent.slice(36, 52);
  if (traceId === ZERO_TRACE || spanId === ZERO_SPAN) return undefined;
  const sc: { -readonly [K in keyof SpanContext]: SpanContext[K] } = {
    traceId,
    spanId,
    traceFlags: Number.parseInt(traceparent.slice(53), 16) & 1,
    isRemote: true,
  };
  if (tracestate !== undefined && tracestate.length > 0) sc.traceState = parseTraceState(tracestate);
  return sc; // the pattern and the zero checks are the whole of W3C validity
}

/** Writes the span's `traceparent` (and `tracestate`) into a carrier. */
export function injectSpanContext(sc: SpanContext, carrier: Record<string, string>): void {
  if (sc.traceId === ZERO_TRACE || sc.spanId === ZERO_SPAN) return; // a non-recording span of no trace
  carrier.traceparent = `00-${sc.traceId}-${sc.spanId}-0${(sc.traceFlags & 1).toString(16)}`;
  const state = sc.traceState?.serialize();
  if (state !== undefined && state.length > 0) carrier.tracestate = state;
}

/** A read-only `TraceState` of a header value (entries kept in order; this package never changes them). */
function parseTraceState(header: string): TraceState {
  const entries = new Map<string, string>();
  for (const part of header.split(',')) {
    const i = part.indexOf('=');
    if (i <= 0) continue;
    const key = part.slice(0, i).trim();
    if (key.length > 0 && !entries.has(key)) entries.set(key, part.slice(i + 1).trim());
  }
  return new ListTraceState(entries);
}

class ListTraceState implements TraceState {
  readonly #entries: Map<string, string>;
  constructor(entries: Map<string, string>) {
    this.#entries = entries;
  }
  set(key: string, value: string): TraceState {
    const next = new Map([[key, value]]);
    for (const [k, v] of this.#entries) if (k !== key) next.set(k, v);
    return new ListTraceState(next);
  }
  unset(key: string): TraceState {
    const next = new Map(this.#entries);
    next.delete(key);
    return new ListTraceState(next);
  }
  get(key: string): string | undefined {
    return this.#entries.get(key);
  }
  serialize(): string {
    return [...this.#entries].map(([k, v]) => `${k}=${v}`).join(',');
  }
}
