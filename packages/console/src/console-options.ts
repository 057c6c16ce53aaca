import type {
  HandlerInfo,
  HealthReport,
  HealthStatus,
  Heartbeat,
  Logger,
  OutboxRelayHealth,
  ProjectionRunner,
  ProjectionStatus,
} from '@cqrs-ts/core';
import type { OutboxStore, SagaRecord, SagaStore } from '@cqrs-ts/core/spi';

/** A mutating action of the console. */
export type ConsoleAction = 'outbox.replay' | 'outbox.delete' | 'saga.resume' | 'projection.rebuild';

/** Every {@link ConsoleAction}. */
export const CONSOLE_ACTIONS: readonly ConsoleAction[] = Object.freeze([
  'outbox.replay',
  'outbox.delete',
  'saga.resume',
  'projection.rebuild',
]);

/** Who performs an action, as the {@link ConsoleAuthorize} hook names them (logged with the action). */
export interface ConsolePrincipal {
  readonly id: string;
  readonly [detail: string]: unknown;
}

/** What {@link ConsoleAuthorize} is asked about. */
export interface ConsoleActionRequest {
  readonly action: ConsoleAction;
  /** The dead letter ids, the saga id or the projection name. */
  readonly targets: readonly string[];
  /** The HTTP request (read its session cookie or `Authorization` header). */
  readonly request: Request;
}

/**
 * Decides whether a mutating action may run: return who performs it, or `undefined`/`false` to refuse (403).
 * A throw is answered as its error (an `AuthorizationError` is 403). Runs after the cross-site checks.
 */
export type ConsoleAuthorize = (
  request: ConsoleActionRequest,
) => ConsolePrincipal | undefined | false | Promise<ConsolePrincipal | undefined | false>;

/** One line of the console's audit log: an attempted action, who, and how it ended. */
export interface ConsoleAuditEntry {
  /** Epoch ms. */
  readonly at: number;
  readonly requestId: string;
  readonly action: ConsoleAction;
  readonly targets: readonly string[];
  /** The principal's id, `undefined` when the hook refused. */
  readonly who: string | undefined;
  readonly outcome: 'done' | 'refused' | 'failed';
  /** Rows affected (replay, delete), or the saga's status after a resume. */
  readonly result?: number | string;
  readonly error?: string;
}

/** One row of the health panel: a component's readiness and, for a background loop, its heartbeat. */
export interface ConsoleComponentHealth {
  readonly name: string;
  /** `pass` ready, `warn` degraded but serving, `fail` not ready (the health model's verdicts). */
  readonly status: HealthStatus;
  /** Why, for `warn` and `fail`. */
  readonly output?: string;
  /** The measured value behind the verdict, with its unit (a lag, an age). */
  readonly observed?: string;
  /** The loop's last beat, when the component is a background loop. */
  readonly heartbeat?: (Heartbeat & { readonly lateMs: number }) | undefined;
}

/**
 * The saga store methods the console reads (a full `SagaStore` fits); `count` (the in-memory and SQL stores have
 * it) gives the counts in one query, without it the console counts pages of `list` (up to 20,000 sagas).
 */
export type ConsoleSagaStore = Pick<SagaStore, 'list' | 'load' | 'history' | 'count'>;

/** Options of {@link createConsole}. */
export interface ConsoleOptions {
  /** Where the console is mounted; every path it serves starts with it. @default '/console' */
  readonly basePath?: string;
  /** Shown as the page title. @default 'cqrs-ts console' */
  readonly title?: string;
  /** The application map comes from `mediator.describe()`. */
  readonly mediator?: { describe(): readonly HandlerInfo[] };
  readonly outbox?: {
    readonly store: OutboxStore;
    /** Adds the relay's state (running, circuit, last error, stalled) to the outbox and health panels. */
    readonly relay?: { health(): Promise<OutboxRelayHealth>; heartbeat?(): Heartbeat };
    /** The throughput chart: `buckets` windows of `bucketMs`. @default { bucketMs: 60_000, buckets: 15 } */
    readonly throughput?: { readonly bucketMs?: number; readonly buckets?: number };
  };
  readonly sagas?: {
    readonly store: ConsoleSagaStore;
    /** Enables resume of `compensation_failed` sagas (a `SagaRunner` fits). */
    readonly runner?: {
      resume(id: string): { done(): Promise<unknown> };
      health?(): Promise<{
        readonly needsOperator: number;
        readonly retrying: number;
        readonly active: number;
      }>;
    };
  };
  readonly projections?: {
    readonly runner: Pick<ProjectionRunner, 'status' | 'rebuild'> &
      Partial<Pick<ProjectionRunner, 'heartbeat'>>;
    /** The projections to show (the runner's). */
    readonly names: readonly string[];
  };
  /**
   * The service's health model (`createHealth({ components })` of `@cqrs-ts/core`): its readiness checks head
   * the health panel. The relay, saga runner and projections given above are added with their heartbeats.
   */
  readonly health?: { ready(): Promise<HealthReport> };
  /** More background loops whose heartbeats to show, by name (a consumer's fetch loop, a saga recovery agent). */
  readonly heartbeats?: Readonly<Record<string, () => Heartbeat | undefined>>;
  /**
   * Mount without mutating actions (replay, delete, resume, rebuild answer 403 and the page shows no buttons).
   * @default false
   */
  readonly readOnly?: boolean;
  /** Required unless `readOnly`: who may run an action (see {@link ConsoleAuthorize}). */
  readonly authorize?: ConsoleAuthorize;
  /** Receives every attempted action. @default an `info` line on `logger`, or JSON on stderr without one */
  readonly audit?: (entry: ConsoleAuditEntry) => void;
  readonly logger?: Logger;
  /**
   * Host names (or `host:port`) the console answers for; any other `Host` is refused (403), every request. Set it
   * when the console is reachable on loopback or a private address: a DNS-rebinding page names its own host.
   * @default any host
   */
  readonly allowedHosts?: readonly string[];
  /** Origins besides the request's own allowed to post actions (e.g. behind a proxy that rewrites Host). */
  readonly trustedOrigins?: readonly string[];
  /** Seconds between the page's refreshes of the live panels. @default 5 */
  readonly refreshSeconds?: number;
  /** Clock, epoch ms. @default Date.now */
  readonly now?: () => number;
}

/** @internal The JSON of a saga row as the API returns it. */
export type ConsoleSagaRow = Pick<
  SagaRecord,
  'id' | 'name' | 'status' | 'cursor' | 'attempts' | 'error' | 'createdAt' | 'updatedAt' | 'leaseOwner'
>;

/** @internal The JSON of one projection as the API returns it. */
export type ConsoleProjectionRow = ProjectionStatus;
