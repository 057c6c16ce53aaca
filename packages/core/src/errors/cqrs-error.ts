/**
 * Stable, greppable error codes. Never reused, never renamed.
 * The table is published in the core README.
 */
export const CQRS_ERROR_CODES = [
  'CQRS_VALIDATION',
  'CQRS_AUTHORIZATION',
  'CQRS_HANDLER_NOT_FOUND',
  'CQRS_DUPLICATE_HANDLER',
  'CQRS_MISSING_HANDLER',
  'CQRS_WRONG_MESSAGE_KIND',
  'CQRS_INVALID_MESSAGE',
  'CQRS_TIMEOUT',
  'CQRS_CANCELLED',
  'CQRS_PROCESSING',
  'CQRS_SERIALIZATION',
  'CQRS_UNKNOWN_MESSAGE_TYPE',
  'CQRS_CONFIGURATION',
  'CQRS_EVENT_DISPATCH',
  'CQRS_EVENT_DEPTH_EXCEEDED',
  'CQRS_NO_HANDLER_ANSWERED',
  'CQRS_CIRCUIT_OPEN',
  'CQRS_CONCURRENCY',
  'CQRS_OUTBOX',
  'CQRS_PAYLOAD_TOO_LARGE',
  'CQRS_STORAGE',
  'CQRS_ENVELOPE',
  'CQRS_BROKER',
  'CQRS_SAGA',
  'CQRS_IDEMPOTENCY_CONFLICT',
  'CQRS_IDEMPOTENCY_IN_FLIGHT',
  'CQRS_NOT_FOUND',
] as const;

/** Union of every code a {@link CqrsError} can carry. */
export type CqrsErrorCode = (typeof CQRS_ERROR_CODES)[number];

const BRAND = Symbol.for('cqrs-ts.error');

/**
 * Base class of every error cqrs-ts raises. Carries a stable {@link CqrsErrorCode}.
 * Use {@link isCqrsError} rather than `instanceof` when several copies of the package may be loaded.
 */
export class CqrsError extends Error {
  readonly code: CqrsErrorCode;
  readonly [BRAND] = true;

  constructor(code: CqrsErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = 'CqrsError';
  }

  /** A plain, JSON-safe view of the error (no stack). */
  toJSON(): { name: string; code: CqrsErrorCode; message: string } {
    return { name: this.name, code: this.code, message: this.message };
  }
}

/** True for any cqrs-ts error, also one thrown by another copy of the package; optionally of one code. */
export function isCqrsError(value: unknown, code?: CqrsErrorCode): value is CqrsError {
  if (typeof value !== 'object' || value === null || (value as Record<symbol, unknown>)[BRAND] !== true) {
    return false;
  }
  return code === undefined || (value as CqrsError).code === code;
}

/** One field-level problem found while validating a message. */
export interface ValidationIssue {
  /** Path to the offending field, e.g. `['items', 0, 'sku']`; empty for the whole message. */
  readonly path: readonly (string | number)[];
  readonly message: string;
  /** Machine-readable code, e.g. `too_small` or `invalid_type`. */
  readonly code: string;
  /** Warnings are reported but never fail a dispatch. Defaults to `error`. */
  readonly severity?: 'error' | 'warning';
}

/** A message failed schema validation or its business-rule `validate` hook. Lists every issue. */
export class ValidationError extends CqrsError {
  readonly messageType: string;
  readonly issues: readonly ValidationIssue[];

  constructor(messageType: string, issues: readonly ValidationIssue[]) {
    const first = issues[0];
    const where = first && first.path.length > 0 ? ` at ${first.path.join('.')}` : '';
    super(
      'CQRS_VALIDATION',
      `${messageType} is invalid: ${first ? `${first.message}${where}` : 'unknown reason'}${issues.length > 1 ? ` (+${issues.length - 1} more)` : ''}`,
    );
    this.name = 'ValidationError';
    this.messageType = messageType;
    this.issues = Object.freeze(issues.map((i) => Object.freeze({ ...i, path: Object.freeze([...i.path]) })));
  }

  override toJSON(): {
    name: string;
    code: CqrsErrorCode;
    message: string;
    issues: readonly ValidationIssue[];
  } {
    return { ...super.toJSON(), issues: this.issues };
  }
}

/** The dispatch was denied by a message hook, a handler hook or a global policy. */
export class AuthorizationError extends CqrsError {
  readonly messageType: string;
  readonly reason: string;
  readonly reasonCode: string;

  constructor(messageType: string, reason = 'access denied', reasonCode = 'forbidden') {
    super('CQRS_AUTHORIZATION', `Not authorized to dispatch ${messageType}: ${reason}`);
    this.name = 'AuthorizationError';
    this.messageType = messageType;
    this.reason = reason;
    this.reasonCode = reasonCode;
  }
}

/** No handler is registered for the message type. */
export class HandlerNotFoundError extends CqrsError {
  readonly messageType: string;
  constructor(messageType: string) {
    super('CQRS_HANDLER_NOT_FOUND', `No handler is registered for "${messageType}"`);
    this.name = 'HandlerNotFoundError';
    this.messageType = messageType;
  }
}

/**
 * What a request names does not exist: a handler throws it for an unknown order, account or stream. Not to be
 * confused with {@link HandlerNotFoundError} (no handler for a message type, a mistake of the application).
 */
export class NotFoundError extends CqrsError {
  /** What was looked for, e.g. `order`. */
  readonly resource: string;
  /** Its id, when there is one. */
  readonly id: string | undefined;

  constructor(resource: string, id?: string, options?: { cause?: unknown }) {
    super(
      'CQRS_NOT_FOUND',
      id === undefined
        ? `${resource} not found`
        : `${resource} ${JSON.stringify(id.slice(0, 200))} not found`,
      options,
    );
    this.name = 'NotFoundError';
    this.resource = resource;
    this.id = id;
  }
}

/** Two handlers were registered for one command or query (raised when the mediator is built). */
export class DuplicateHandlerError extends CqrsError {
  readonly messageTypes: readonly string[];
  constructor(messageTypes: readonly string[]) {
    super('CQRS_DUPLICATE_HANDLER', `More than one handler is registered for: ${messageTypes.join(', ')}`);
    this.name = 'DuplicateHandlerError';
    this.messageTypes = Object.freeze([...messageTypes]);
  }
}

/** Declared commands or queries have no handler (raised when the mediator is built). */
export class MissingHandlerError extends CqrsError {
  readonly messageTypes: readonly string[];
  constructor(messageTypes: readonly string[]) {
    super(
      'CQRS_MISSING_HANDLER',
      `No handler is registered for declared messages: ${messageTypes.join(', ')}`,
    );
    this.name = 'MissingHandlerError';
    this.messageTypes = Object.freeze([...messageTypes]);
  }
}

/** A handler, behavior or step took longer than its time budget. */
export class TimeoutError extends CqrsError {
  readonly timeoutMs: number;
  constructor(what: string, timeoutMs: number) {
    super('CQRS_TIMEOUT', `${what} timed out after ${timeoutMs} ms`);
    this.name = 'TimeoutError';
    this.timeoutMs = timeoutMs;
  }
}

/** The caller aborted the dispatch through its AbortSignal. */
export class CancelledError extends CqrsError {
  constructor(what: string, options?: { cause?: unknown }) {
    super('CQRS_CANCELLED', `${what} was cancelled`, options);
    this.name = 'CancelledError';
  }
}

/** Wraps an unexpected failure with its cause. Raised only by behaviors that map errors. */
export class ProcessingError extends CqrsError {
  readonly messageType: string;
  constructor(messageType: string, cause: unknown, message?: string) {
    super(
      'CQRS_PROCESSING',
      message ??
        `Processing ${messageType} failed: ${cause instanceof Error ? cause.message : String(cause)}`,
      { cause },
    );
    this.name = 'ProcessingError';
    this.messageType = messageType;
  }
}

/** A message could not be encoded or decoded. */
export class SerializationError extends CqrsError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('CQRS_SERIALIZATION', message, options);
    this.name = 'SerializationError';
  }
}

/** A serialized message names a type that is not in the catalog. */
export class UnknownMessageTypeError extends CqrsError {
  readonly messageType: string;
  constructor(messageType: string) {
    super('CQRS_UNKNOWN_MESSAGE_TYPE', `Unknown message type "${messageType.slice(0, 200)}"`);
    this.name = 'UnknownMessageTypeError';
    this.messageType = messageType;
  }
}

/** Invalid options or definitions, reported at start-up. */
export class ConfigurationError extends CqrsError {
  constructor(message: string) {
    super('CQRS_CONFIGURATION', message);
    this.name = 'ConfigurationError';
  }
}

/**
 * A circuit breaker is open: the dependency failed repeatedly, so calls are refused at once until `retryAt`,
 * when one trial call is let through (half-open). A circuit held open by hand (isolated) has no `retryAt`.
 */
export class CircuitOpenError extends CqrsError {
  /** The circuit's name: the dependency, or the handler when the circuit is per handler. */
  readonly circuit: string;
  /** Epoch ms from which a trial call is let through; `undefined` while the circuit is held open by hand. */
  readonly retryAt: number | undefined;
  /** Ms from the refusal until `retryAt`, or `undefined`. */
  readonly retryAfterMs: number | undefined;

  constructor(circuit: string, retryAt: number | undefined, options?: { cause?: unknown; now?: number }) {
    const retryAfterMs =
      retryAt === undefined ? undefined : Math.max(0, Math.ceil(retryAt - (options?.now ?? Date.now())));
    super(
      'CQRS_CIRCUIT_OPEN',
      retryAt === undefined
        ? `circuit "${circuit}" is held open: retry once it is released`
        : `circuit "${circuit}" is open: retry after ${new Date(retryAt).toISOString()} (in ${retryAfterMs} ms)`,
      options?.cause === undefined ? undefined : { cause: options.cause },
    );
    this.name = 'CircuitOpenError';
    this.circuit = circuit;
    this.retryAt = retryAt;
    this.retryAfterMs = retryAfterMs;
  }

  override toJSON(): {
    name: string;
    code: CqrsErrorCode;
    message: string;
    circuit: string;
    retryAt: number | undefined;
    retryAfterMs: number | undefined;
  } {
    return {
      ...super.toJSON(),
      circuit: this.circuit,
      retryAt: this.retryAt,
      retryAfterMs: this.retryAfterMs,
    };
  }
}
