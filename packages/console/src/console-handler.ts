import { randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';
import { brotliDecompressSync, gunzipSync } from 'node:zlib';
import {
  AuthorizationError,
  applicationMap,
  ConfigurationError,
  type Heartbeat,
  heartbeatLateness,
  isCqrsError,
  NotFoundError,
  PayloadTooLargeError,
  ValidationError,
} from '@cqrs-ts/core';
import type { OutboxRecord, SagaStatus } from '@cqrs-ts/core/spi';
import { SAGA_STATUSES } from '@cqrs-ts/core/spi';
import { toProblem } from '@cqrs-ts/http';
import type {
  ConsoleAction,
  ConsoleAuditEntry,
  ConsoleComponentHealth,
  ConsoleOptions,
  ConsolePrincipal,
  ConsoleSagaRow,
} from './console-options.ts';
import { CONSOLE_ASSETS, consolePage } from './console-page.ts';
import { applicationMapSvg, barChartSvg, sequenceSvg } from './console-svg.ts';

/** The console: a Fetch handler serving its page and JSON API under `basePath`. */
export interface Console {
  readonly basePath: string;
  /** True when replay, delete, resume and rebuild are mounted. */
  readonly actions: boolean;
  /** Answers a request under `basePath` (anything else is a 404 problem). Never rejects. */
  fetch(request: Request): Promise<Response>;
  /** The most recent actions (up to 100), newest last. */
  auditLog(): readonly ConsoleAuditEntry[];
}

/** Largest JSON body an action accepts. */
export const CONSOLE_MAX_BODY_BYTES = 16 * 1024;
/** Most ids one replay or delete takes. */
export const CONSOLE_MAX_IDS = 100;
/** Payload text shown per dead letter; longer payloads are cut (and flagged). */
export const CONSOLE_MAX_PAYLOAD_CHARS = 64 * 1024;

const CSRF_COOKIE = 'cqrs_console_csrf';
const CSRF_HEADER = 'x-csrf-token';
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const SAGA_ID = /^[\x21-\x7e]{1,255}$/;
const TOKEN = /^[A-Za-z0-9_-]{43}$/;

const CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

const SECURITY_HEADERS: Readonly<Record<string, string>> = Object.freeze({
  'content-security-policy': CSP,
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-resource-policy': 'same-origin',
  'cache-control': 'no-store',
});

function param(raw: string): string {
  try {
    return decodeURIComponent(raw);
  } catch {
    throw invalid('console request', 'bad percent-encoding in the path');
  }
}

const invalid = (what: string, message: string, path: (string | number)[] = []) =>
  new ValidationError(what, [{ path, message, code: 'invalid' }]);

function reply(status: number, body: string, type: string, extra?: Record<string, string>): Response {
  return new Response(body, {
    status,
    headers: { ...SECURITY_HEADERS, 'content-type': type, ...extra },
  });
}

const json = (value: unknown, status = 200) =>
  reply(status, JSON.stringify(value), 'application/json; charset=utf-8');

const svg = (text: string) => reply(200, text, 'image/svg+xml; charset=utf-8');

/** Reads a request body within `max` bytes (by Content-Length first, then while streaming). */
async function readBody(request: Request, max: number): Promise<string> {
  const declared = Number(request.headers.get('content-length') ?? '0');
  if (declared > max) throw new PayloadTooLargeError('console action', declared, max);
  const body = request.body;
  if (body === null) return '';
  const reader = body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > max) {
      await reader.cancel().catch(() => {});
      throw new PayloadTooLargeError('console action', size, max);
    }
    chunks.push(value);
  }
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(Buffer.concat(chunks));
  } catch {
    throw invalid('console action', 'the body is not UTF-8');
  }
}

async function readJsonObject(request: Request): Promise<Record<string, unknown>> {
  const type = request.headers.get('content-type') ?? '';
  if (!/^application\/json\s*(;|$)/i.test(type)) throw invalid('console action', 'send application/json');
  const text = await readBody(request, CONSOLE_MAX_BODY_BYTES);
  let value: unknown;
  try {
    value = text === '' ? {} : JSON.parse(text);
  } catch {
    throw invalid('console action', 'the body is not valid JSON');
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw invalid('console action', 'the body must be a JSON object');
  return value as Record<string, unknown>;
}

function onlyKeys(body: Record<string, unknown>, allowed: readonly string[]): void {
  for (const key of Object.keys(body))
    if (!allowed.includes(key))
      throw invalid('console action', `unknown field ${JSON.stringify(key.slice(0, 40))}`, [key]);
}

function idsOf(body: Record<string, unknown>): string[] {
  onlyKeys(body, ['ids']);
  const ids = body.ids;
  if (!Array.isArray(ids) || ids.length === 0 || ids.length > CONSOLE_MAX_IDS)
    throw invalid('console action', `ids must be an array of 1 to ${CONSOLE_MAX_IDS} record ids`, ['ids']);
  ids.forEach((id, i) => {
    if (typeof id !== 'string' || !UUID.test(id))
      throw invalid('console action', 'not a record id (a UUID)', ['ids', i]);
  });
  return [...new Set(ids as string[])];
}

function cookie(request: Request, name: string): string | undefined {
  const header = request.headers.get('cookie');
  if (header === null) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq !== -1 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

function sameToken(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

const decoder = new TextDecoder('utf-8', { fatal: true });

/**
 * The payload of an outbox record as text (decompressed within a limit; `base64:...` when it is not UTF-8), cut to
 * {@link CONSOLE_MAX_PAYLOAD_CHARS}.
 */
function payloadText(record: OutboxRecord): { text: string; truncated: boolean } {
  let bytes: Uint8Array;
  try {
    const limit = { maxOutputLength: 4 * CONSOLE_MAX_PAYLOAD_CHARS };
    bytes =
      record.contentEncoding === 'gzip'
        ? gunzipSync(record.payload, limit)
        : record.contentEncoding === 'br'
          ? brotliDecompressSync(record.payload, limit)
          : record.payload;
  } catch (error) {
    return {
      text: `(cannot decode the ${record.contentEncoding} payload: ${String(error)})`,
      truncated: false,
    };
  }
  let text: string;
  try {
    text = decoder.decode(bytes);
  } catch {
    // a binary payload (protobuf, Avro): shown as base64, marked
    text = `base64:${Buffer.from(bytes).toString('base64')}`;
  }
  return text.length > CONSOLE_MAX_PAYLOAD_CHARS
    ? { text: text.slice(0, CONSOLE_MAX_PAYLOAD_CHARS), truncated: true }
    : { text, truncated: false };
}

function deadLetterJson(record: OutboxRecord) {
  const payload = payloadText(record);
  return {
    id: record.id,
    seq: record.seq,
    type: record.type,
    topic: record.topic,
    key: record.key,
    attempts: record.attempts,
    lastError: record.lastError,
    createdAt: record.createdAt,
    headers: record.headers,
    payload: payload.text,
    payloadTruncated: payload.truncated,
  };
}

const sagaRow = (r: ConsoleSagaRow): ConsoleSagaRow => ({
  id: r.id,
  name: r.name,
  status: r.status,
  cursor: r.cursor,
  attempts: r.attempts,
  error: r.error,
  createdAt: r.createdAt,
  updatedAt: r.updatedAt,
  leaseOwner: r.leaseOwner,
});

function defaultAudit(options: ConsoleOptions): (entry: ConsoleAuditEntry) => void {
  const logger = options.logger;
  if (logger !== undefined) return (entry) => logger.info({ ...entry }, 'console action');
  return (entry) => process.stderr.write(`${JSON.stringify({ msg: 'console action', ...entry })}\n`);
}

function positiveInteger(value: string | null, name: string, max: number, fallback: number): number {
  if (value === null || value === '') return fallback;
  const n = Number(value);
  if (!/^\d{1,9}$/.test(value) || n < 1 || n > max)
    throw invalid('console query', `${name} must be an integer from 1 to ${max}`, [name]);
  return n;
}

/**
 * Creates the console: one page and a JSON API under `basePath`, over Fetch `Request`/`Response`. Mount it with
 * `consoleFastify`, `mountConsoleHono`, `mountConsoleExpress` or `toNodeListener`, or call `fetch` yourself.
 *
 * Security: every answer carries a strict Content-Security-Policy (scripts and styles from the console only,
 * no inline code) and `nosniff`; the page builds text with `textContent` and the diagrams are escaped SVG, so
 * payload text never becomes markup. An action (a `POST`) must come from the page's origin (`Origin`,
 * `Sec-Fetch-Site`) with the session's CSRF token in `x-csrf-token` (double submit: the page's `HttpOnly`,
 * `SameSite=Strict` cookie), is allowed by `authorize`, and is written to the audit log with who did it.
 * Bad input answers RFC 9457 problem details (400, 403, 404, 413), never a 500.
 * @throws ConfigurationError (`CQRS_CONFIGURATION`) when actions are mounted (`readOnly` not set) without an
 *   `authorize` hook, or for a bad `basePath`.
 */
export function createConsole(options: ConsoleOptions): Console {
  const basePath = (options.basePath ?? '/console').replace(/\/+$/, '');
  if (!/^(\/[A-Za-z0-9._~-]+)+$/.test(basePath))
    throw new ConfigurationError(
      `console basePath must be a path like /console, got ${JSON.stringify(basePath)}`,
    );
  const actions = options.readOnly !== true;
  if (actions && typeof options.authorize !== 'function')
    throw new ConfigurationError(
      'the console mounts replay, delete, resume and rebuild only with an authorize hook: pass authorize, or readOnly: true',
    );
  const now = options.now ?? Date.now;
  const hosts =
    options.allowedHosts === undefined
      ? undefined
      : new Set(options.allowedHosts.map((h) => h.toLowerCase()));
  const audit = options.audit ?? defaultAudit(options);
  const recent: ConsoleAuditEntry[] = [];
  const bucketMs = options.outbox?.throughput?.bucketMs ?? 60_000;
  const buckets = options.outbox?.throughput?.buckets ?? 15;
  if (
    !(Number.isInteger(bucketMs) && bucketMs >= 1000) ||
    !(Number.isInteger(buckets) && buckets >= 1 && buckets <= 120)
  )
    throw new ConfigurationError('console outbox.throughput: bucketMs >= 1000 and 1 to 120 buckets');
  const refresh = options.refreshSeconds ?? 5;
  const projectionNames = new Set(options.projections?.names ?? []);
  const panels = {
    map: options.mediator !== undefined,
    outbox: options.outbox !== undefined,
    sagas: options.sagas !== undefined,
    projections: options.projections !== undefined,
    health: true,
  };
  // the map changes only with the mediator: composed once
  let mapCache: { json: string; svg: string } | undefined;
  const map = () => {
    if (mapCache === undefined) {
      const handlers = options.mediator?.describe() ?? [];
      mapCache = {
        json: JSON.stringify({
          handlers: handlers.map((h) => ({
            messageType: h.messageType,
            kind: h.kind,
            mode: h.mode,
            handler: h.handler,
            behaviors: h.behaviors,
            emits: h.emits,
            description: h.description ?? null,
          })),
          mermaid: applicationMap(handlers),
        }),
        svg: applicationMapSvg(handlers),
      };
    }
    return mapCache;
  };

  const record = (entry: ConsoleAuditEntry) => {
    recent.push(entry);
    if (recent.length > 100) recent.shift();
    try {
      audit(entry);
    } catch {
      // an audit sink that throws does not undo the action
    }
  };

  // Throughput windows are aligned to bucketMs; a window that ended more than SETTLE_MS ago no longer changes (a
  // relay marks rows with its own clock, so a little later), so it is counted once and kept: a refresh queries
  // only the current window and any not yet known.
  const SETTLE_MS = 10_000;
  const windows = new Map<number, number>();
  const throughput = async (t: number): Promise<readonly number[] | undefined> => {
    const store = outboxStore();
    if (store.publishedCounts === undefined) return undefined;
    const end = (Math.floor(t / bucketMs) + 1) * bucketMs;
    const first = end - buckets * bucketMs;
    let from = first;
    while (from < end && windows.has(from)) from += bucketMs;
    const fresh =
      from < end
        ? await store.publishedCounts({ since: from, bucketMs, buckets: (end - from) / bucketMs })
        : [];
    fresh.forEach((n, i) => {
      const start = from + i * bucketMs;
      if (start + bucketMs <= t - SETTLE_MS) windows.set(start, n);
    });
    for (const start of windows.keys()) if (start < first) windows.delete(start);
    return Array.from({ length: buckets }, (_, i) => {
      const start = first + i * bucketMs;
      return start < from ? windows.get(start)! : (fresh[(start - from) / bucketMs] ?? 0);
    });
  };

  /** Cross-site checks, then the hook; runs `run` and logs the outcome. */
  const act = async (
    request: Request,
    requestId: string,
    action: ConsoleAction,
    targets: readonly string[],
    run: () => Promise<number | string>,
  ): Promise<Response> => {
    if (!actions) throw new AuthorizationError(action, 'the console is read-only');
    let who: ConsolePrincipal | undefined | false;
    try {
      who = await options.authorize!({ action, targets, request });
    } catch (error) {
      record({
        at: now(),
        requestId,
        action,
        targets,
        who: undefined,
        outcome: 'refused',
        error: String(error),
      });
      throw error;
    }
    if (who === undefined || who === false || typeof who.id !== 'string') {
      record({ at: now(), requestId, action, targets, who: undefined, outcome: 'refused' });
      throw new AuthorizationError(action, 'refused by the authorize hook');
    }
    try {
      const result = await run();
      record({ at: now(), requestId, action, targets, who: who.id, outcome: 'done', result });
      return json({ action, result, by: who.id });
    } catch (error) {
      record({ at: now(), requestId, action, targets, who: who.id, outcome: 'failed', error: String(error) });
      throw error;
    }
  };

  const checkCrossSite = (request: Request, url: URL) => {
    const site = request.headers.get('sec-fetch-site');
    if (site !== null && site !== 'same-origin')
      throw new AuthorizationError(
        'console action',
        `cross-site request (Sec-Fetch-Site: ${site.slice(0, 20)})`,
      );
    const origin = request.headers.get('origin');
    if (origin !== null && origin !== url.origin && !(options.trustedOrigins ?? []).includes(origin))
      throw new AuthorizationError('console action', 'the Origin is not the console’s');
    const token = request.headers.get(CSRF_HEADER);
    const session = cookie(request, CSRF_COOKIE);
    if (token === null || session === undefined || !TOKEN.test(session) || !sameToken(token, session))
      throw new AuthorizationError('console action', 'missing or wrong x-csrf-token');
  };

  const outboxStore = () => {
    if (options.outbox === undefined) throw new NotFoundError('console panel', 'outbox');
    return options.outbox.store;
  };
  const sagaStore = () => {
    if (options.sagas === undefined) throw new NotFoundError('console panel', 'sagas');
    return options.sagas.store;
  };

  const sagaCounts = async (names: readonly string[] | undefined) => {
    const store = sagaStore();
    if (typeof store.count === 'function')
      return { counts: await store.count(names === undefined ? {} : { names }), capped: false };
    const counts = Object.fromEntries(SAGA_STATUSES.map((s) => [s, 0])) as Record<SagaStatus, number>;
    let afterId: string | undefined;
    let seen = 0;
    for (;;) {
      const page = await store.list({
        limit: 500,
        ...(afterId === undefined ? {} : { afterId }),
        ...(names === undefined ? {} : { names }),
      });
      for (const r of page) counts[r.status]++;
      seen += page.length;
      if (page.length < 500) return { counts, capped: false };
      if (seen >= 20_000) return { counts, capped: true };
      afterId = page[page.length - 1]!.id;
    }
  };

  const beat = (hb: Heartbeat | undefined): ConsoleComponentHealth['heartbeat'] =>
    hb === undefined ? undefined : { ...hb, lateMs: heartbeatLateness(hb, now()) };
  const failed = (name: string, error: unknown): ConsoleComponentHealth => ({
    name,
    status: 'fail',
    output: String(error).slice(0, 500),
  });

  const healthOf = async (): Promise<ConsoleComponentHealth[]> => {
    const rows: Promise<ConsoleComponentHealth | ConsoleComponentHealth[]>[] = [];
    const model = options.health;
    if (model !== undefined)
      rows.push(
        model.ready().then(
          (report) =>
            Object.entries(report.checks).map(([name, entries]) => {
              const e = entries[0];
              return {
                name,
                status: e?.status ?? 'fail',
                ...(e?.output === undefined ? {} : { output: e.output }),
                ...(e?.observedValue === undefined
                  ? {}
                  : { observed: `${e.observedValue} ${e.observedUnit ?? ''}`.trim() }),
              };
            }),
          (error) => failed('health', error),
        ),
      );
    const relay = options.outbox?.relay;
    if (relay !== undefined)
      rows.push(
        relay.health().then(
          (h) => ({
            name: 'outbox-relay',
            status:
              !h.running || h.circuit === 'open'
                ? 'fail'
                : h.stalled || h.circuit === 'half-open'
                  ? 'warn'
                  : 'pass',
            output: `${h.running ? 'running' : 'stopped'}, circuit ${h.circuit}, backlog ${h.backlog}${h.stalled ? ', stalled' : ''}${h.lastError === undefined ? '' : `; last error: ${h.lastError}`}`,
            heartbeat: beat(relay.heartbeat?.()),
          }),
          (error) => failed('outbox-relay', error),
        ),
      );
    const sagaRunner = options.sagas?.runner;
    if (sagaRunner?.health !== undefined)
      rows.push(
        sagaRunner.health().then(
          (s) => ({
            name: 'saga-runner',
            status: s.needsOperator > 0 || s.retrying > 0 ? 'warn' : 'pass',
            output: `${s.needsOperator} need an operator, ${s.retrying} retrying, ${s.active} active`,
          }),
          (error) => failed('saga-runner', error),
        ),
      );
    const projections = options.projections?.runner;
    for (const name of projectionNames)
      rows.push(
        projections!.status(name).then(
          (s) => ({
            name: `projection:${name}`,
            status: s.state === 'stopped' ? 'fail' : s.lastError !== null ? 'warn' : 'pass',
            output: `${s.state}${s.active ? '' : ' (inactive)'}, lag ${s.lagEvents}${s.lagCapped ? '+' : ''} events`,
            heartbeat: beat(projections!.heartbeat?.(name)),
          }),
          (error) => failed(`projection:${name}`, error),
        ),
      );
    for (const [name, read] of Object.entries(options.heartbeats ?? {}))
      rows.push(
        (async () => {
          const hb = beat(read());
          if (hb === undefined) return { name, status: 'warn', output: 'no heartbeat yet' } as const;
          return {
            name,
            status: !hb.running ? 'warn' : hb.lateMs > 0 ? 'fail' : 'pass',
            output: !hb.running
              ? 'stopped'
              : hb.lateMs > 0
                ? `no beat for ${hb.lateMs} ms past due`
                : `${hb.cycles} cycles`,
            heartbeat: hb,
          } as const;
        })().catch((error) => failed(name, error)),
      );
    // the model's verdict first; a row of the same name from the parts given adds its heartbeat (and detail)
    const merged = new Map<string, ConsoleComponentHealth>();
    for (const row of (await Promise.all(rows)).flat()) {
      const known = merged.get(row.name);
      if (known === undefined) merged.set(row.name, row);
      else
        merged.set(row.name, {
          ...known,
          ...(known.output === undefined && row.output !== undefined ? { output: row.output } : {}),
          ...(row.heartbeat === undefined ? {} : { heartbeat: row.heartbeat }),
        });
    }
    return [...merged.values()];
  };

  const route = async (request: Request, url: URL, rest: string, requestId: string): Promise<Response> => {
    const method = request.method;
    if (method === 'GET' || method === 'HEAD') {
      if (rest === '' || rest === '/') {
        const existing = cookie(request, CSRF_COOKIE);
        const token =
          existing !== undefined && TOKEN.test(existing) ? existing : randomBytes(32).toString('base64url');
        const page = consolePage({
          basePath,
          title: options.title ?? 'cqrs-ts console',
          token,
          actions,
          panels,
          refresh,
        });
        return reply(200, page, 'text/html; charset=utf-8', {
          'set-cookie': `${CSRF_COOKIE}=${token}; Path=${basePath}; HttpOnly; SameSite=Strict`,
        });
      }
      const asset = CONSOLE_ASSETS[rest];
      if (asset !== undefined) return reply(200, asset.body, asset.type);
      switch (rest) {
        case '/api/map':
          return reply(200, map().json, 'application/json; charset=utf-8');
        case '/api/map.svg':
          return svg(map().svg);
        case '/api/outbox': {
          const store = outboxStore();
          const t = now();
          const [stats, relay, counts] = await Promise.all([
            store.stats(t),
            options.outbox!.relay?.health(),
            throughput(t),
          ]);
          return json({
            ...stats,
            relay: relay ?? null,
            throughput: counts === undefined ? null : { bucketMs, counts },
          });
        }
        case '/api/outbox/throughput.svg': {
          const store = outboxStore();
          const t = now();
          const counts =
            (await store.publishedCounts?.({ since: t - buckets * bucketMs, bucketMs, buckets })) ?? [];
          return svg(barChartSvg(counts, { unit: `published per ${bucketMs / 1000} s` }));
        }
        case '/api/outbox/dead-letters': {
          const limit = positiveInteger(url.searchParams.get('limit'), 'limit', 500, 50);
          const after = url.searchParams.get('afterSeq');
          const afterSeq =
            after === null ? 0 : positiveInteger(after, 'afterSeq', Number.MAX_SAFE_INTEGER, 0);
          const rows = await outboxStore().listDeadLetters({ limit, afterSeq });
          return json({ items: rows.map(deadLetterJson) });
        }
        case '/api/sagas': {
          const store = sagaStore();
          const status = url.searchParams.get('status');
          if (status !== null && status !== '' && !SAGA_STATUSES.includes(status as SagaStatus))
            throw invalid('console query', `status must be one of ${SAGA_STATUSES.join(', ')}`, ['status']);
          const name = url.searchParams.get('name');
          if (name !== null && name.length > 255)
            throw invalid('console query', 'name is too long', ['name']);
          const after = url.searchParams.get('afterId');
          if (after !== null && after !== '' && !SAGA_ID.test(after))
            throw invalid('console query', 'not a saga id', ['afterId']);
          const limit = positiveInteger(url.searchParams.get('limit'), 'limit', 500, 50);
          const names = name === null || name === '' ? undefined : [name];
          const [items, counts] = await Promise.all([
            store.list({
              limit,
              ...(status === null || status === '' ? {} : { statuses: [status as SagaStatus] }),
              ...(names === undefined ? {} : { names }),
              ...(after === null || after === '' ? {} : { afterId: after }),
            }),
            sagaCounts(names),
          ]);
          return json({
            ...counts,
            items: items.map(sagaRow),
            resume: actions && options.sagas?.runner !== undefined,
          });
        }
        case '/api/projections': {
          if (options.projections === undefined) throw new NotFoundError('console panel', 'projections');
          const runner = options.projections.runner;
          return json({ items: await Promise.all([...projectionNames].map((n) => runner.status(n))) });
        }
        case '/api/health':
          return json({ at: now(), components: await healthOf() });
        case '/api/audit':
          return json({ items: recent });
      }
      const saga = /^\/api\/sagas\/([^/]+)(\/log\.svg)?$/.exec(rest);
      if (saga !== null) {
        const id = param(saga[1]!);
        if (!SAGA_ID.test(id)) throw invalid('console query', 'not a saga id', ['id']);
        const store = sagaStore();
        const found = await store.load(id);
        if (found === undefined) throw new NotFoundError('saga', id);
        const log = await store.history(id);
        if (saga[2] === undefined) return json({ saga: { ...sagaRow(found), context: found.context }, log });
        const steps: string[] = [];
        for (const e of log) if (!steps.includes(e.stepId)) steps.push(e.stepId);
        const arrows = log.flatMap((e) => {
          const who = steps.indexOf(e.stepId) + 1;
          const tries = e.attempts > 1 ? ` x${e.attempts}` : '';
          return [
            { from: 0, to: who, label: `${e.action}${tries}` },
            { from: who, to: 0, label: e.status, reply: true, failed: e.status === 'failed' },
          ];
        });
        return svg(sequenceSvg([found.name, ...steps], arrows));
      }
      throw new NotFoundError('console resource', rest.slice(0, 100));
    }
    if (method !== 'POST')
      throw new NotFoundError('console resource', `${method.slice(0, 10)} ${rest.slice(0, 100)}`);
    checkCrossSite(request, url);
    if (rest === '/api/outbox/dead-letters/replay' || rest === '/api/outbox/dead-letters/delete') {
      const store = outboxStore();
      const ids = idsOf(await readJsonObject(request));
      return rest.endsWith('replay')
        ? act(request, requestId, 'outbox.replay', ids, () => store.replayDeadLetters(ids, now()))
        : act(request, requestId, 'outbox.delete', ids, () => store.deleteDeadLetters(ids));
    }
    const resume = /^\/api\/sagas\/([^/]+)\/resume$/.exec(rest);
    if (resume !== null) {
      const id = param(resume[1]!);
      if (!SAGA_ID.test(id)) throw invalid('console action', 'not a saga id', ['id']);
      onlyKeys(await readJsonObject(request), []);
      const store = sagaStore();
      const runner = options.sagas?.runner;
      if (runner === undefined) throw new NotFoundError('console action', 'saga resume (no runner given)');
      return act(request, requestId, 'saga.resume', [id], async () => {
        const found = await store.load(id);
        if (found === undefined) throw new NotFoundError('saga', id);
        if (found.status !== 'compensation_failed')
          throw invalid(
            'saga.resume',
            `only a compensation_failed saga is resumed here; this one is ${found.status}`,
          );
        try {
          await runner.resume(id).done();
        } catch (error) {
          // a saga that ends compensated (not completed) rejects done(): the status tells what happened
          if (isCqrsError(error, 'CQRS_CONCURRENCY') || isCqrsError(error, 'CQRS_NOT_FOUND')) throw error;
        }
        return (await store.load(id))?.status ?? 'unknown';
      });
    }
    const rebuild = /^\/api\/projections\/([^/]+)\/rebuild$/.exec(rest);
    if (rebuild !== null) {
      const name = param(rebuild[1]!);
      if (!projectionNames.has(name)) throw new NotFoundError('projection', name.slice(0, 100));
      const body = await readJsonObject(request);
      onlyKeys(body, ['mode']);
      const mode = body.mode ?? 'in-place';
      if (mode !== 'in-place' && mode !== 'activate')
        throw invalid('console action', "mode must be 'in-place' or 'activate'", ['mode']);
      return act(request, requestId, 'projection.rebuild', [name], async () => {
        await options.projections!.runner.rebuild(name, mode);
        return mode;
      });
    }
    throw new NotFoundError('console action', rest.slice(0, 100));
  };

  return {
    basePath,
    actions,
    auditLog: () => [...recent],
    async fetch(request) {
      const requestId = randomUUID();
      try {
        let url: URL;
        try {
          url = new URL(request.url);
        } catch {
          throw invalid('console request', 'bad URL');
        }
        if (
          hosts !== undefined &&
          !hosts.has(url.host.toLowerCase()) &&
          !hosts.has(url.hostname.toLowerCase())
        )
          throw new AuthorizationError('console request', `host ${url.host.slice(0, 100)} is not allowed`);
        const path = url.pathname;
        if (path !== basePath && !path.startsWith(`${basePath}/`))
          throw new NotFoundError('console resource', path.slice(0, 100));
        const rest = path.slice(basePath.length);
        const response = await route(request, url, rest, requestId);
        response.headers.set('x-request-id', requestId);
        return response;
      } catch (error) {
        const { problem, headers, unexpected } = toProblem(error, requestId);
        if (unexpected) options.logger?.error({ err: String(error), requestId }, 'console request failed');
        return reply(problem.status, JSON.stringify(problem), 'application/problem+json', {
          ...headers,
          'x-request-id': requestId,
        });
      }
    },
  };
}
