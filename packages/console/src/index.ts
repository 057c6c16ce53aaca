/**
 * `@cqrs-ts/console`: an operator console for cqrs-ts applications. One web page and a small JSON API over Fetch
 * `Request`/`Response`: the application map from `mediator.describe()`, the outbox (backlog, oldest pending age,
 * throughput, dead letters with replay and delete), sagas (counts, list, one instance's steps, resume), projections
 * (position, lag, state, rebuild) and each component's health. Mount it on Fastify, Hono, Express or a Node
 * server with one call; mutating actions need an `authorize` hook and are logged with who did them.
 * @module
 */

export type { Console } from './console-handler.ts';
export {
  CONSOLE_MAX_BODY_BYTES,
  CONSOLE_MAX_IDS,
  CONSOLE_MAX_PAYLOAD_CHARS,
  createConsole,
} from './console-handler.ts';
export type { ConsoleFastifyOptions } from './console-mount.ts';
export {
  consoleFastify,
  mountConsoleExpress,
  mountConsoleHono,
  sendFetchResponse,
  toFetchRequest,
  toNodeListener,
} from './console-mount.ts';
export type {
  ConsoleAction,
  ConsoleActionRequest,
  ConsoleAuditEntry,
  ConsoleAuthorize,
  ConsoleComponentHealth,
  ConsoleOptions,
  ConsolePrincipal,
  ConsoleSagaStore,
} from './console-options.ts';
export { CONSOLE_ACTIONS } from './console-options.ts';
export type { SequenceArrow } from './console-svg.ts';
export { applicationMapSvg, barChartSvg, escapeXml, sequenceSvg } from './console-svg.ts';
