/**
 * The orders service's configuration: one typed object with embedded defaults (SQLite file, in-memory broker),
 * overridable from environment variables, validated at start with one message per bad value.
 */
import { ConfigurationError } from '@cqrs-ts/core';

/** Where the service keeps its tables, outbox, sagas and read models. */
export type StorageConfig =
  | { readonly kind: 'sqlite'; readonly file: string; readonly sagaFile: string }
  | { readonly kind: 'postgres'; readonly url: string; readonly poolSize: number };

/** How events travel from the relay to the consumer. */
export type BrokerConfig =
  | { readonly kind: 'memory' }
  | {
      readonly kind: 'nats';
      readonly servers: string;
      readonly stream: string;
      readonly subjectPrefix: string;
      /** How long a delivery waits for its ack before NATS redelivers it (a consumer that died). */
      readonly ackWaitMs: number;
    };

/** Everything the service reads at start. */
export interface ServiceConfig {
  readonly http: { readonly host: string; readonly port: number };
  readonly storage: StorageConfig;
  readonly broker: BrokerConfig;
  /** Saga lease (a dead worker's saga is recovered after it) and how often recovery runs. */
  readonly saga: { readonly leaseMs: number; readonly recoverEveryMs: number };
  /** Cached order lookups: time to live and size. */
  readonly cache: { readonly ttlMs: number; readonly maxEntries: number };
  /** Card payments above this total (cents) are declined, and the checkout is compensated. */
  readonly paymentLimitCents: number;
  /** How long shutdown waits for in-flight work before closing connections anyway. */
  readonly shutdownTimeoutMs: number;
  /** Print what the service does (`info`) or only errors (`error`). */
  readonly logLevel: 'info' | 'error';
  /** Bearer token for the console's actions (replay, delete, resume, rebuild); without one it is read-only. */
  readonly consoleToken?: string | undefined;
}

/** Roles a process can run: `all` runs every loop in one process. */
export const SERVICE_ROLES = ['all', 'api', 'relay', 'consumer', 'saga-recovery', 'projections'] as const;
export type ServiceRole = (typeof SERVICE_ROLES)[number];

/** One bad setting: the variable and what is wrong with its value. */
export interface ConfigIssue {
  readonly key: string;
  readonly message: string;
}

/** The configuration has bad values: `issues` lists each one; the message names them all. */
export class ServiceConfigError extends ConfigurationError {
  readonly issues: readonly ConfigIssue[];
  constructor(issues: readonly ConfigIssue[]) {
    super(`invalid configuration:\n${issues.map((i) => `  ${i.key}: ${i.message}`).join('\n')}`);
    this.name = 'ServiceConfigError';
    this.issues = issues;
  }
}

/** The embedded defaults: `npm start` needs nothing else installed. */
export const DEFAULT_CONFIG: ServiceConfig = {
  http: { host: '127.0.0.1', port: 3000 },
  storage: { kind: 'sqlite', file: 'orders.db', sagaFile: 'orders-sagas.db' },
  broker: { kind: 'memory' },
  saga: { leaseMs: 30_000, recoverEveryMs: 5_000 },
  cache: { ttlMs: 60_000, maxEntries: 10_000 },
  paymentLimitCents: 100_000,
  shutdownTimeoutMs: 10_000,
  logLevel: 'info',
};

/** The environment variables read, with what each sets. */
export const CONFIG_ENV = {
  ORDERS_HOST: 'HTTP listen address',
  ORDERS_PORT: 'HTTP port (0 picks a free one)',
  ORDERS_STORAGE: '`sqlite` (default) or `postgres`',
  ORDERS_SQLITE_FILE: 'SQLite file of the tables, outbox and read models',
  ORDERS_SQLITE_SAGA_FILE: 'SQLite file of the sagas',
  DATABASE_URL: 'Postgres connection string (with ORDERS_STORAGE=postgres)',
  ORDERS_PG_POOL_SIZE: 'Postgres pool size',
  ORDERS_BROKER: '`memory` (default) or `nats`',
  NATS_SERVERS: 'NATS servers (with ORDERS_BROKER=nats)',
  ORDERS_NATS_STREAM: 'JetStream stream name',
  ORDERS_NATS_SUBJECT_PREFIX: 'subject prefix of the events',
  ORDERS_NATS_ACK_WAIT_MS: 'how long NATS waits for an ack before redelivering, ms',
  ORDERS_SAGA_LEASE_MS: 'saga lease, ms',
  ORDERS_SAGA_RECOVER_EVERY_MS: 'interval of saga recovery, ms',
  ORDERS_CACHE_TTL_MS: 'time to live of a cached order, ms',
  ORDERS_CACHE_MAX_ENTRIES: 'cached orders kept',
  ORDERS_PAYMENT_LIMIT_CENTS: 'largest card payment, cents',
  ORDERS_SHUTDOWN_TIMEOUT_MS: 'how long shutdown waits for in-flight work, ms',
  ORDERS_LOG_LEVEL: '`info` or `error`',
  ORDERS_CONSOLE_TOKEN: 'bearer token for the console actions (16 characters or more); read-only without',
} as const;

type Env = Readonly<Record<string, string | undefined>>;

/**
 * The configuration from `env` over {@link DEFAULT_CONFIG} (and `overrides`, e.g. from tests).
 * @throws ServiceConfigError listing every bad value
 */
export function loadConfig(env: Env = process.env, overrides: Partial<ServiceConfig> = {}): ServiceConfig {
  const issues: ConfigIssue[] = [];
  const base = { ...DEFAULT_CONFIG, ...overrides };
  const str = (key: keyof typeof CONFIG_ENV) => {
    const v = env[key];
    return v === undefined || v === '' ? undefined : v;
  };
  const int = (key: keyof typeof CONFIG_ENV, fallback: number, min: number, max: number) => {
    const raw = str(key);
    if (raw === undefined) return fallback;
    const n = Number(raw);
    if (!/^-?\d+$/.test(raw.trim()) || !Number.isSafeInteger(n) || n < min || n > max) {
      issues.push({ key, message: `"${raw}" is not an integer from ${min} to ${max}` });
      return fallback;
    }
    return n;
  };
  const oneOf = <T extends string>(key: keyof typeof CONFIG_ENV, allowed: readonly T[], fallback: T): T => {
    const raw = str(key);
    if (raw === undefined) return fallback;
    if (!(allowed as readonly string[]).includes(raw)) {
      issues.push({ key, message: `"${raw}" is not one of ${allowed.join(', ')}` });
      return fallback;
    }
    return raw as T;
  };

  const host = str('ORDERS_HOST') ?? base.http.host;
  if (!/^[A-Za-z0-9.:[\]-]{1,253}$/.test(host))
    issues.push({ key: 'ORDERS_HOST', message: `"${host}" is not a host name or address` });
  const port = int('ORDERS_PORT', base.http.port, 0, 65_535);

  let storage: StorageConfig = base.storage;
  const storageKind = oneOf('ORDERS_STORAGE', ['sqlite', 'postgres'], base.storage.kind);
  if (storageKind === 'sqlite') {
    const prev = base.storage.kind === 'sqlite' ? base.storage : DEFAULT_CONFIG.storage;
    const d = prev as Extract<StorageConfig, { kind: 'sqlite' }>;
    storage = {
      kind: 'sqlite',
      file: str('ORDERS_SQLITE_FILE') ?? d.file,
      sagaFile: str('ORDERS_SQLITE_SAGA_FILE') ?? d.sagaFile,
    };
    if (storage.file === storage.sagaFile)
      issues.push({
        key: 'ORDERS_SQLITE_SAGA_FILE',
        message: 'must be another file than ORDERS_SQLITE_FILE',
      });
  } else {
    const url = str('DATABASE_URL') ?? (base.storage.kind === 'postgres' ? base.storage.url : undefined);
    if (url === undefined)
      issues.push({ key: 'DATABASE_URL', message: 'is required with ORDERS_STORAGE=postgres' });
    else if (!/^postgres(ql)?:\/\//.test(url))
      issues.push({ key: 'DATABASE_URL', message: 'is not a postgres:// connection string' });
    storage = {
      kind: 'postgres',
      url: url ?? '',
      poolSize: int(
        'ORDERS_PG_POOL_SIZE',
        base.storage.kind === 'postgres' ? base.storage.poolSize : 10,
        1,
        1000,
      ),
    };
  }

  let broker: BrokerConfig = base.broker;
  const brokerKind = oneOf('ORDERS_BROKER', ['memory', 'nats'], base.broker.kind);
  if (brokerKind === 'memory') broker = { kind: 'memory' };
  else {
    const prev = base.broker.kind === 'nats' ? base.broker : undefined;
    broker = {
      kind: 'nats',
      servers: str('NATS_SERVERS') ?? prev?.servers ?? '127.0.0.1:4222',
      stream: str('ORDERS_NATS_STREAM') ?? prev?.stream ?? 'ORDERS',
      subjectPrefix: str('ORDERS_NATS_SUBJECT_PREFIX') ?? prev?.subjectPrefix ?? 'orders',
      ackWaitMs: int('ORDERS_NATS_ACK_WAIT_MS', prev?.ackWaitMs ?? 30_000, 1_000, 3_600_000),
    };
    if (!/^[A-Za-z0-9_-]{1,64}$/.test(broker.stream))
      issues.push({ key: 'ORDERS_NATS_STREAM', message: `"${broker.stream}" is not a stream name` });
    if (!/^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/.test(broker.subjectPrefix))
      issues.push({
        key: 'ORDERS_NATS_SUBJECT_PREFIX',
        message: `"${broker.subjectPrefix}" is not a subject`,
      });
  }

  const config: ServiceConfig = {
    http: { host, port },
    storage,
    broker,
    saga: {
      leaseMs: int('ORDERS_SAGA_LEASE_MS', base.saga.leaseMs, 1_000, 3_600_000),
      recoverEveryMs: int('ORDERS_SAGA_RECOVER_EVERY_MS', base.saga.recoverEveryMs, 100, 3_600_000),
    },
    cache: {
      ttlMs: int('ORDERS_CACHE_TTL_MS', base.cache.ttlMs, 1, 86_400_000),
      maxEntries: int('ORDERS_CACHE_MAX_ENTRIES', base.cache.maxEntries, 1, 10_000_000),
    },
    paymentLimitCents: int('ORDERS_PAYMENT_LIMIT_CENTS', base.paymentLimitCents, 0, 1_000_000_000),
    shutdownTimeoutMs: int('ORDERS_SHUTDOWN_TIMEOUT_MS', base.shutdownTimeoutMs, 0, 600_000),
    logLevel: oneOf('ORDERS_LOG_LEVEL', ['info', 'error'], base.logLevel),
    consoleToken: str('ORDERS_CONSOLE_TOKEN') ?? base.consoleToken,
  };
  if (config.consoleToken !== undefined && !/^[\x21-\x7e]{16,200}$/.test(config.consoleToken))
    issues.push({
      key: 'ORDERS_CONSOLE_TOKEN',
      message: 'must be 16 to 200 printable characters without spaces',
    });
  if (issues.length > 0) throw new ServiceConfigError(issues);
  return config;
}

/**
 * The roles of `--role=a,b` (default `all`).
 * @throws ServiceConfigError for an unknown role, or a split deployment on the embedded defaults
 */
export function parseRoles(argv: readonly string[], config: ServiceConfig): ReadonlySet<ServiceRole> {
  const arg = argv.find((a) => a.startsWith('--role='));
  const names = (arg?.slice('--role='.length) ?? 'all').split(',').filter((n) => n !== '');
  const issues: ConfigIssue[] = [];
  for (const n of names)
    if (!(SERVICE_ROLES as readonly string[]).includes(n))
      issues.push({ key: '--role', message: `"${n}" is not one of ${SERVICE_ROLES.join(', ')}` });
  const roles = new Set((names.length === 0 ? ['all'] : names) as ServiceRole[]);
  if (!roles.has('all') && issues.length === 0) {
    if (config.broker.kind === 'memory')
      issues.push({
        key: '--role',
        message: 'the in-memory broker runs every role in one process: use --role=all',
      });
    if (config.storage.kind === 'sqlite')
      issues.push({
        key: '--role',
        message: 'SQLite storage runs every role in one process: use --role=all',
      });
  }
  if (issues.length > 0) throw new ServiceConfigError(issues);
  return roles;
}
