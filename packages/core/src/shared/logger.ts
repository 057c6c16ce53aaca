export type LogLevel = 'trace' | 'debug' | 'info' | 'warn' | 'error';

/** A pino-compatible logger: `logger.info(object, message)`. `isLevelEnabled` lets disabled levels cost nothing. */
export interface Logger {
  trace?(object: Record<string, unknown>, message?: string): void;
  debug(object: Record<string, unknown>, message?: string): void;
  info(object: Record<string, unknown>, message?: string): void;
  warn(object: Record<string, unknown>, message?: string): void;
  error(object: Record<string, unknown>, message?: string): void;
  isLevelEnabled?(level: string): boolean;
}

/** A logger that drops everything. */
export const noopLogger: Logger = Object.freeze({
  trace() {},
  debug() {},
  info() {},
  warn() {},
  error() {},
  isLevelEnabled: () => false,
});
