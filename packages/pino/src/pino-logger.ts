import type { Logger, LogLevel } from '@cqrs-ts/core';
import { ConfigurationError, currentContext } from '@cqrs-ts/core';

/** The part of a pino logger the adapter uses (a `pino()` instance or a child fits), so pino's types stay out. */
export interface PinoLike {
  trace(object: object, message?: string): void;
  debug(object: object, message?: string): void;
  info(object: object, message?: string): void;
  warn(object: object, message?: string): void;
  error(object: object, message?: string): void;
  isLevelEnabled(level: string): boolean;
}

/** Options of {@link createPinoLogger} and {@link cqrsLogMixin}. */
export interface PinoLoggerOptions {
  /**
   * Field names whose values are replaced by `censor`, at any depth of the logged object (payloads, headers,
   * errors' details), compared case-insensitively. Added to the built-in secret pattern, not instead of it.
   * @default [] (the pattern alone: names containing pass, secret, token, card, authorization, cookie, api-key, private-key)
   */
  readonly redact?: readonly string[];
  /** Replaces the built-in secret pattern; `null` turns it off (only `redact` names are masked). */
  readonly secretPattern?: RegExp | null;
  /** @default '[redacted]' */
  readonly censor?: string;
}

const SECRET_PATTERN = /pass|secret|token|card|authori[sz]ation|cookie|api[-_]?key|private[-_]?key/i;
const MAX_DEPTH = 10;

/** The trace id of a W3C `traceparent` (`00-<trace-id>-<span-id>-<flags>`), `undefined` if malformed. */
function traceIdOf(traceparent: string | undefined): string | undefined {
  if (traceparent === undefined || traceparent.length < 55 || traceparent[2] !== '-') return undefined;
  return traceparent.slice(3, 35);
}

/**
 * The ids of the current dispatch (or `runWithContext` scope), for pino's `mixin` option: `requestId`,
 * `correlationId`, `causationId`, `traceId`, `spanId` and `tenantId` where known; `{}` outside any.
 *
 * ```ts
 * const log = pino({ mixin: cqrsLogMixin });
 * ```
 */
export function cqrsLogMixin(): Record<string, string> {
  const ambient = currentContext();
  if (ambient === undefined) return {};
  const out: Record<string, string> = { correlationId: ambient.correlationId };
  if (ambient.requestId !== undefined) out.requestId = ambient.requestId;
  if (ambient.causationId !== undefined) out.causationId = ambient.causationId;
  const traceId = traceIdOf(ambient.traceparent);
  if (traceId !== undefined) {
    out.traceId = traceId;
    out.spanId = ambient.traceparent!.slice(36, 52);
  }
  if (ambient.tenantId !== undefined) out.tenantId = ambient.tenantId;
  return out;
}

/**
 * A redactor: a copy of `value` with the values of secret fields replaced by `censor`, at any depth (objects,
 * arrays, `Map`s of headers, `Headers`). Values that are not plain data (class instances other than errors)
 * are kept as they are; an `Error` becomes `{ type, message, stack, ...its own fields }`, redacted too.
 * @throws ConfigurationError for a `redact` entry that is not a non-empty string
 */
export function createRedactor(options: PinoLoggerOptions = {}): (value: unknown) => unknown {
  const names = new Set<string>();
  for (const n of options.redact ?? []) {
    if (typeof n !== 'string' || n === '') throw new ConfigurationError('pino: redact must list field names');
    names.add(n.toLowerCase());
  }
  const pattern = options.secretPattern === undefined ? SECRET_PATTERN : options.secretPattern;
  const censor = options.censor ?? '[redacted]';
  const secret = (key: string) => names.has(key.toLowerCase()) || (pattern?.test(key) ?? false);
  const entries = (pairs: Iterable<[string, unknown]>, depth: number) => {
    const out: Record<string, unknown> = {};
    for (const [k, v] of pairs) out[k] = secret(k) ? censor : walk(v, depth + 1);
    return out;
  };
  const walk = (value: unknown, depth: number): unknown => {
    if (typeof value !== 'object' || value === null) return value;
    if (depth > MAX_DEPTH) return '[depth]';
    if (Array.isArray(value)) return value.map((v) => walk(v, depth + 1));
    if (value instanceof Error) {
      const { name, message, stack } = value;
      return { type: name, message, stack, ...entries(Object.entries(value), depth) };
    }
    if (value instanceof Map) return entries(value as Map<string, unknown>, depth);
    if (typeof (value as Headers).entries === 'function' && typeof (value as Headers).get === 'function')
      return entries((value as Headers).entries(), depth);
    const proto = Object.getPrototypeOf(value);
    if (proto !== Object.prototype && proto !== null) return value;
    return entries(Object.entries(value), depth);
  };
  return (value) => walk(value, 0);
}

/**
 * The core `Logger` port over a pino logger: every line carries the ids of the current dispatch (request,
 * correlation, causation and trace ids, tenant; see {@link cqrsLogMixin}), and the values of secret fields are
 * masked at any depth before pino sees them (see {@link createRedactor}). Fields the caller logs win over the
ambient ids (the `logging` behavior's `requestId` is the message's own). A disabled level costs one
 * `isLevelEnabled` check: nothing is copied. Pass it wherever core takes a `logger` (the `logging` behavior, the
 * outbox relay, consumers, projection runners).
 */
export function createPinoLogger(pino: PinoLike, options: PinoLoggerOptions = {}): Logger {
  if (typeof pino?.info !== 'function' || typeof pino.isLevelEnabled !== 'function')
    throw new ConfigurationError('createPinoLogger: pass a pino logger');
  const redact = createRedactor(options);
  const write = (level: LogLevel) => (object: Record<string, unknown>, message?: string) => {
    if (!pino.isLevelEnabled(level)) return;
    const fields = { ...cqrsLogMixin(), ...(redact(object) as Record<string, unknown>) };
    if (message === undefined) pino[level](fields);
    else pino[level](fields, message);
  };
  return {
    trace: write('trace'),
    debug: write('debug'),
    info: write('info'),
    warn: write('warn'),
    error: write('error'),
    isLevelEnabled: (level) => pino.isLevelEnabled(level),
  };
}
