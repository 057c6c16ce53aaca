import { currentContext } from '../context/ambient-context.ts';
import { isBaggage, isSafeId, isTraceparent } from '../context/headers.ts';
import type { ValidationIssue } from '../errors/cqrs-error.ts';
import { ValidationError } from '../errors/cqrs-error.ts';
import { FREEZE_MESSAGES } from '../internal/freeze.ts';
import { isUuid, uuidv7At } from '../shared/uuid.ts';
import type { MessageMetadata } from './message.ts';

/** What a caller may set when creating a message. Anything omitted is generated or taken from the ambient context. */
export interface MetadataInit {
  readonly requestId?: string;
  readonly correlationId?: string;
  readonly causationId?: string;
  readonly requestedBy?: string;
  readonly requestedAt?: string | Date;
  readonly tenantId?: string;
  readonly traceparent?: string;
  /** W3C `tracestate`, at most 512 characters; kept only with a `traceparent`. */
  readonly tracestate?: string;
  /** W3C `baggage` (see {@link isBaggage}). */
  readonly baggage?: string;
  readonly attributes?: Readonly<Record<string, string>>;
  /** See {@link MessageMetadata.idempotencyKey}: 1 to 200 characters, no control characters. */
  readonly idempotencyKey?: string;
}

/** Longest idempotency key, in characters. */
export const MAX_IDEMPOTENCY_KEY_LENGTH = 200;

/** True for a well-formed idempotency key: 1 to 200 characters, none of them a control character. */
export function isIdempotencyKey(value: unknown): value is string {
  if (typeof value !== 'string' || value.length === 0 || value.length > MAX_IDEMPOTENCY_KEY_LENGTH)
    return false;
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (c < 0x20 || (c >= 0x7f && c <= 0x9f)) return false;
  }
  return true;
}

const DAY_MS = 86_400_000;
const PAD2: string[] = [];
for (let i = 0; i < 60; i++) PAD2.push(String(i).padStart(2, '0'));
const PAD3: string[] = [];
for (let i = 0; i < 1000; i++) PAD3.push(String(i).padStart(3, '0'));
let isoDay = Number.NaN;
let isoDate = '';
let isoMs = Number.NaN;
let iso = '';

/**
 * @internal `new Date(ms).toISOString()`, built from a cached date and small tables: formatting a timestamp is
 * most of what creating a message costs otherwise. The last result is kept for the next call of the same ms.
 */
export function isoTimestamp(ms: number): string {
  if (ms === isoMs) return iso;
  const day = Math.floor(ms / DAY_MS);
  if (day !== isoDay) {
    isoDay = day;
    isoDate = new Date(day * DAY_MS).toISOString().slice(0, -13);
  }
  let rest = ms - day * DAY_MS;
  const hours = Math.floor(rest / 3_600_000);
  rest -= hours * 3_600_000;
  const minutes = Math.floor(rest / 60_000);
  rest -= minutes * 60_000;
  const seconds = Math.floor(rest / 1000);
  isoMs = ms;
  iso = `${isoDate}${PAD2[hours]!}:${PAD2[minutes]!}:${PAD2[seconds]!}.${PAD3[rest - seconds * 1000]!}Z`;
  return iso;
}

const EMPTY_ATTRIBUTES: Readonly<Record<string, string>> = Object.freeze({});
const MAX_ATTRIBUTES = 64;
const MAX_ATTRIBUTE_LENGTH = 1024;
function isPlainText(value: unknown): boolean {
  if (typeof value !== 'string' || value.length === 0 || value.length > 256) return false;
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (c < 0x20 || c === 0x7f) return false;
  }
  return true;
}

function checkId(
  issues: ValidationIssue[],
  name: string,
  value: unknown,
  validate: (v: unknown) => boolean,
): void {
  if (value !== undefined && !validate(value)) {
    issues.push({ path: ['metadata', name], message: `invalid ${name}`, code: 'invalid_metadata' });
  }
}

function toIso(value: string | Date | undefined, issues: ValidationIssue[]): string {
  if (value === undefined) return isoTimestamp(Date.now());
  const date = value instanceof Date ? value : typeof value === 'string' ? new Date(value) : undefined;
  if (!date || Number.isNaN(date.getTime())) {
    issues.push({
      path: ['metadata', 'requestedAt'],
      message: 'invalid requestedAt',
      code: 'invalid_metadata',
    });
    return '';
  }
  return date.toISOString();
}

function checkAttributes(value: unknown, issues: ValidationIssue[]): Readonly<Record<string, string>> {
  if (value === undefined) return EMPTY_ATTRIBUTES;
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    issues.push({
      path: ['metadata', 'attributes'],
      message: 'attributes must be a record',
      code: 'invalid_metadata',
    });
    return EMPTY_ATTRIBUTES;
  }
  const entries = Object.entries(value);
  if (entries.length > MAX_ATTRIBUTES) {
    issues.push({
      path: ['metadata', 'attributes'],
      message: `at most ${MAX_ATTRIBUTES} attributes`,
      code: 'too_big',
    });
    return EMPTY_ATTRIBUTES;
  }
  const out: Record<string, string> = {};
  for (const [k, v] of entries) {
    if (typeof v !== 'string' || v.length > MAX_ATTRIBUTE_LENGTH || k.length > 128) {
      issues.push({
        path: ['metadata', 'attributes', k],
        message: 'attribute must be a short string',
        code: 'invalid_metadata',
      });
    } else {
      out[k] = v;
    }
  }
  return Object.freeze(out);
}

/**
 * Builds metadata, frozen unless messages are not (see `FREEZE_MESSAGES`). Inside a dispatch, the correlation id, causation id, tenant and requester default to
 * the ambient context's, so nested messages are linked to the message being handled.
 * @throws ValidationError when a given value is malformed (a non-UUID request id, control characters, ...).
 */
export function createMetadata(init?: MetadataInit, inherit = true): MessageMetadata {
  const ambient = inherit ? currentContext() : undefined;
  if (init === undefined) {
    const now = Date.now();
    const requestId = uuidv7At(now);
    const metadata: MessageMetadata = {
      requestId,
      correlationId: ambient?.correlationId ?? requestId,
      causationId: ambient?.requestId,
      requestedBy: ambient?.requestedBy,
      requestedAt: isoTimestamp(now),
      tenantId: ambient?.tenantId,
      traceparent: ambient?.traceparent,
      attributes: EMPTY_ATTRIBUTES,
    };
    // `tracestate` travels with a `traceparent`, `baggage` when the application opted in: the keys exist only
    // when there is something to carry
    if (
      ambient !== undefined &&
      (ambient.baggage !== undefined ||
        (ambient.traceparent !== undefined && ambient.tracestate !== undefined))
    ) {
      const traced: MessageMetadata = {
        ...metadata,
        ...(ambient.traceparent !== undefined && ambient.tracestate !== undefined
          ? { tracestate: ambient.tracestate }
          : {}),
        ...(ambient.baggage !== undefined ? { baggage: ambient.baggage } : {}),
      };
      return FREEZE_MESSAGES ? Object.freeze(traced) : traced;
    }
    return FREEZE_MESSAGES ? Object.freeze(metadata) : metadata;
  }
  const issues: ValidationIssue[] = [];
  checkId(issues, 'requestId', init.requestId, isUuid);
  checkId(issues, 'correlationId', init.correlationId, isSafeId);
  checkId(issues, 'causationId', init.causationId, isSafeId);
  checkId(issues, 'tenantId', init.tenantId, isSafeId);
  checkId(issues, 'requestedBy', init.requestedBy, isPlainText);
  checkId(issues, 'traceparent', init.traceparent, (v) => isTraceparent(v as string));
  checkId(issues, 'tracestate', init.tracestate, (v) => typeof v === 'string' && v.length <= 512);
  checkId(issues, 'baggage', init.baggage, isBaggage);
  if (init.idempotencyKey !== undefined && !isIdempotencyKey(init.idempotencyKey)) {
    issues.push({
      path: ['metadata', 'idempotencyKey'],
      message: `idempotencyKey must be 1 to ${MAX_IDEMPOTENCY_KEY_LENGTH} characters without control characters`,
      code: 'invalid_metadata',
    });
  }
  const requestedAt = toIso(init.requestedAt, issues);
  const attributes = checkAttributes(init.attributes, issues);
  if (issues.length > 0) throw new ValidationError('metadata', issues);
  const requestId = init.requestId ?? uuidv7At(Date.now());
  const tracestate =
    init.traceparent !== undefined
      ? init.tracestate
      : ambient?.traceparent !== undefined
        ? (init.tracestate ?? ambient.tracestate)
        : undefined;
  const metadata: MessageMetadata = {
    requestId,
    correlationId: init.correlationId ?? ambient?.correlationId ?? requestId,
    causationId: init.causationId ?? ambient?.requestId,
    requestedBy: init.requestedBy ?? ambient?.requestedBy,
    requestedAt,
    tenantId: init.tenantId ?? ambient?.tenantId,
    traceparent: init.traceparent ?? ambient?.traceparent,
    ...(tracestate !== undefined ? { tracestate } : {}),
    ...((init.baggage ?? ambient?.baggage) !== undefined
      ? { baggage: init.baggage ?? ambient?.baggage }
      : {}),
    attributes,
    ...(init.idempotencyKey !== undefined ? { idempotencyKey: init.idempotencyKey } : {}),
  };
  return FREEZE_MESSAGES ? Object.freeze(metadata) : metadata;
}
