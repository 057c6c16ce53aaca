/**
 * `@cqrs-ts/pino`: the core `Logger` port over pino, with the ids of the current dispatch on every line and
 * secret fields redacted.
 * @module
 */
export type { PinoLike, PinoLoggerOptions } from './pino-logger.ts';
export { cqrsLogMixin, createPinoLogger, createRedactor } from './pino-logger.ts';
