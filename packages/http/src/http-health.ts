import type { Health, HealthReport } from '@cqrs-ts/core';
import { ConfigurationError } from '@cqrs-ts/core';
import type { HttpReply } from './http-handler.ts';

/** Where and what the framework packages serve for health (option `health` of every framework package). */
export interface HealthMountOptions {
  /** The model from `createHealth` of `@cqrs-ts/core`. */
  readonly health: Health;
  /** Prefix of `<path>/live` and `<path>/ready`. @default '/health' */
  readonly path?: string;
}

/** A `GET` route a framework package mounts as is: no body, no parameters. */
export interface PlainRoute {
  readonly path: string;
  handle(): Promise<HttpReply>;
}

/** The media type of the IETF health-check draft. */
export const HEALTH_CONTENT_TYPE = 'application/health+json';

/** A report as a reply: 200 for `pass` and `warn`, 503 for `fail`, never cached. */
export function healthReply(report: HealthReport): HttpReply {
  return {
    status: report.status === 'fail' ? 503 : 200,
    headers: { 'content-type': HEALTH_CONTENT_TYPE, 'cache-control': 'no-store' },
    body: JSON.stringify(report),
  };
}

/**
 * The two health routes: `<path>/live` (liveness: the process and event loop) and `<path>/ready` (readiness:
 * every component). A model that throws answers 503 with status `fail`.
 * @throws ConfigurationError for a missing model or a path that does not start with `/`
 */
export function healthRoutes(options: HealthMountOptions): readonly PlainRoute[] {
  const { health } = options;
  if (typeof health?.live !== 'function' || typeof health.ready !== 'function')
    throw new ConfigurationError('health: pass the model from createHealth()');
  const prefix = (options.path ?? '/health').replace(/\/$/, '');
  if (!prefix.startsWith('/')) throw new ConfigurationError('health: path must start with "/"');
  const answer = (probe: () => Promise<HealthReport>) => () =>
    probe().then(healthReply, (error: unknown) =>
      healthReply({ status: 'fail', description: String(error), checks: {} }),
    );
  return [
    { path: `${prefix}/live`, handle: answer(() => health.live()) },
    { path: `${prefix}/ready`, handle: answer(() => health.ready()) },
  ];
}
