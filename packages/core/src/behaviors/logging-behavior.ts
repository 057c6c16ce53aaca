import { currentContext } from '../context/ambient-context.ts';
import { isCqrsError } from '../errors/cqrs-error.ts';
import type { Behavior, BehaviorTarget, Middleware } from '../mediator/behavior.ts';
import { createBehavior } from '../mediator/behavior.ts';
import type { AnyMessage } from '../messages/message.ts';
import type { Logger, LogLevel } from '../shared/logger.ts';

/** Options of {@link logging}. */
export interface LoggingOptions {
  readonly logger: Logger;
  /** Level of the line written when a dispatch succeeds. Default `debug`. */
  readonly level?: LogLevel;
  /** Include the payload in lines; pass it through `redact` first. Default `false`. */
  readonly includePayload?: boolean;
  /** Masks secrets before a payload is logged. Default: keys matching /pass|secret|token|card|authorization/i are masked. */
  readonly redact?: (payload: unknown, message: AnyMessage) => unknown;
  readonly target?: BehaviorTarget;
}

const SECRET_KEY = /pass|secret|token|card|authorization|cookie|api[-_]?key/i;

/** Masks values whose key looks secret, at any depth. */
export function redactSecrets(value: unknown, depth = 0): unknown {
  if (depth > 8 || typeof value !== 'object' || value === null) return value;
  if (Array.isArray(value)) return value.map((v) => redactSecrets(v, depth + 1));
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value))
    out[k] = SECRET_KEY.test(k) ? '[redacted]' : redactSecrets(v, depth + 1);
  return out;
}

function enabled(logger: Logger, level: LogLevel): boolean {
  return logger.isLevelEnabled ? logger.isLevelEnabled(level) : true;
}

/**
 * Writes one line per dispatch with the message type, handler, request id, correlation id, duration and
 * outcome. Expected failures (validation, authorization, not found, cancelled) are logged at `warn`, others at
 * `error`. Disabled levels cost nothing.
 */
export function logging(options: LoggingOptions): Behavior {
  const { logger } = options;
  const level = options.level ?? 'debug';
  const redact = options.redact ?? ((payload: unknown) => redactSecrets(payload));
  return createBehavior(
    'logging',
    (handler) => {
      const fields = (message: AnyMessage, started: number, attempt: number) => {
        const ambient = currentContext();
        const out: Record<string, unknown> = {
          messageType: message.type,
          kind: message.kind,
          handler: handler.name,
          requestId: message.metadata.requestId,
          correlationId:
            ambient?.requestId === message.metadata.requestId
              ? ambient.correlationId
              : message.metadata.correlationId,
          causationId: message.metadata.causationId,
          durationMs: Math.round((performance.now() - started) * 1000) / 1000,
        };
        if (attempt > 1) out.attempt = attempt;
        if (options.includePayload) out.payload = redact(message.payload, message);
        return out;
      };
      const logged = async (
        message: Parameters<Middleware>[0],
        context: Parameters<Middleware>[1],
        next: Parameters<Middleware>[2],
        logSuccess: boolean,
      ): Promise<unknown> => {
        const started = performance.now();
        try {
          const result = await next(message, context);
          if (logSuccess)
            logger[level]?.(fields(message, started, context.attempt), `${message.type} handled`);
          return result;
        } catch (error) {
          const expected =
            isCqrsError(error) &&
            ['CQRS_VALIDATION', 'CQRS_AUTHORIZATION', 'CQRS_HANDLER_NOT_FOUND', 'CQRS_CANCELLED'].includes(
              error.code,
            );
          const line = { ...fields(message, started, context.attempt), err: error };
          if (expected) logger.warn(line, `${message.type} rejected`);
          else logger.error(line, `${message.type} failed`);
          throw error;
        }
      };
      // Levels are read per call (a pino logger's level can change at run time); when every level is off, the
      // dispatch goes straight through without an extra async frame.
      const middleware: Middleware = (message, context, next) => {
        const logSuccess = enabled(logger, level);
        if (!logSuccess && !enabled(logger, 'warn') && !enabled(logger, 'error'))
          return next(message, context);
        return logged(message, context, next, logSuccess);
      };
      return middleware;
    },
    options.target,
  );
}
