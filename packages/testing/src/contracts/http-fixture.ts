import type { ExecutionContext, Principal, StandardSchemaV1 } from '@cqrs-ts/core';
import {
  AuthorizationError,
  authorization,
  CircuitOpenError,
  ConcurrencyError,
  createInMemoryUnitOfWork,
  createMediator,
  defineCommand,
  definePaginatedQuery,
  defineQuery,
  defineStreamQuery,
  handle,
  handleStream,
  NotFoundError,
  targetBehavior,
  timeout,
  toPage,
  validation,
} from '@cqrs-ts/core';
import type { HttpHandlerOptions } from '@cqrs-ts/http';
import { commandRoute, queryRoute, streamRoute } from '@cqrs-ts/http';

type FieldType = 'string' | 'integer' | 'number' | 'boolean';
type Field = { readonly type: FieldType; readonly optional?: boolean; readonly min?: number };

/**
 * A small Standard Schema of a flat object with Standard JSON Schema, so the contract needs no schema library:
 * every issue is reported, unknown keys are refused.
 */
export function objectSchema<TValue>(
  fields: Readonly<Record<string, Field>>,
): StandardSchemaV1<TValue, TValue> {
  const jsonSchema = () => ({
    $schema: 'https://json-schema.org/draft/2020-12/schema',
    type: 'object',
    properties: Object.fromEntries(
      Object.entries(fields).map(([k, f]) => [
        k,
        f.min === undefined ? { type: f.type } : { type: f.type, minimum: f.min },
      ]),
    ),
    required: Object.entries(fields)
      .filter(([, f]) => f.optional !== true)
      .map(([k]) => k),
    additionalProperties: false,
  });
  const props = {
    version: 1 as const,
    vendor: 'cqrs-ts-contract',
    jsonSchema: { input: jsonSchema, output: jsonSchema },
    validate(value: unknown) {
      if (typeof value !== 'object' || value === null || Array.isArray(value))
        return { issues: [{ message: 'expected an object', path: [] }] };
      const issues: { message: string; path: string[] }[] = [];
      const v = value as Record<string, unknown>;
      for (const [key, field] of Object.entries(fields)) {
        const x = v[key];
        if (x === undefined) {
          if (field.optional !== true) issues.push({ message: `${key} is required`, path: [key] });
          continue;
        }
        const ok =
          field.type === 'integer'
            ? Number.isInteger(x)
            : field.type === 'number'
              ? typeof x === 'number' && Number.isFinite(x)
              : typeof x === field.type;
        if (!ok) issues.push({ message: `${key} must be a ${field.type}`, path: [key] });
        else if (field.min !== undefined && (x as number) < field.min)
          issues.push({ message: `${key} must be at least ${field.min}`, path: [key] });
      }
      for (const key of Object.keys(v))
        if (!(key in fields)) issues.push({ message: `${key} is not expected`, path: [key] });
      return issues.length > 0 ? { issues } : { value };
    },
  };
  return { '~standard': props } as unknown as StandardSchemaV1<TValue, TValue>;
}

/** A domain error that declares its own problem type and status. */
export class OutOfStockError extends Error {
  readonly problem = {
    status: 409,
    type: 'https://example.com/problems/out-of-stock',
    title: 'Out of stock',
  };
}

/** Everything the contract's handlers saw, reset before each test. */
export interface HttpFixtureState {
  placed: number;
  paid: number;
  /** Holds `shop.pay` inside its handler while set. */
  payGate: Promise<void> | undefined;
  executions: ExecutionContext[];
  streamsOpen: number;
  streamsClosed: number;
  invalidHeaders: string[];
  unexpected: { error: unknown; requestId: string }[];
  /** Version of each order renamed through `shop.rename-order` (1 when never renamed). */
  versions: Map<string, number>;
}

export const PlaceOrder = defineCommand('shop.place-order', {
  schema: objectSchema<{ sku: string; qty: number }>({
    sku: { type: 'string' },
    qty: { type: 'integer', min: 1 },
  }),
  result: objectSchema<{ orderId: string }>({ orderId: { type: 'string' } }),
  description: 'Places an order',
}).returns<{ orderId: string }>();
export const Pay = defineCommand('shop.pay', {
  schema: objectSchema<{ orderId: string; cents: number }>({
    orderId: { type: 'string' },
    cents: { type: 'integer', min: 1 },
  }),
}).returns<{ paid: number }>();
export const ResetShop = defineCommand('shop.reset', {
  authorize: (_message, { execution }) => execution.user?.roles?.includes('admin') === true,
}).returns<{ reset: true }>();
export const RenameOrder = defineCommand('shop.rename-order', {
  schema: objectSchema<{ id: string; name: string; expectedVersion?: number }>({
    id: { type: 'string' },
    name: { type: 'string' },
    expectedVersion: { type: 'integer', optional: true },
  }),
}).returns<{ id: string; version: number }>();
export const GetOrder = defineQuery('shop.get-order', {
  schema: objectSchema<{ id: string; verbose?: boolean }>({
    id: { type: 'string' },
    verbose: { type: 'boolean', optional: true },
  }),
}).returns<{ id: string; verbose: boolean | null; tenant: string | null; version: number }>();
export const ListOrders = definePaginatedQuery('shop.list-orders', {
  schema: objectSchema<{ page: number; pageSize: number; minTotal?: number }>({
    page: { type: 'integer' },
    pageSize: { type: 'integer' },
    minTotal: { type: 'number', optional: true },
  }),
  maxPageSize: 50,
});
export const WatchOrders = defineStreamQuery('shop.watch', {
  schema: objectSchema<{ count: number; after?: number; idleAfter?: number }>({
    count: { type: 'integer', min: 0 },
    after: { type: 'integer', optional: true },
    idleAfter: { type: 'integer', optional: true },
  }),
}).yields<{ position: number; n: number }>();

/** The mediator and the handler options every adapter mounts in the contract. */
export function createHttpFixture(): { state: HttpFixtureState; options: HttpHandlerOptions } {
  const state: HttpFixtureState = {
    placed: 0,
    paid: 0,
    payGate: undefined,
    executions: [],
    streamsOpen: 0,
    streamsClosed: 0,
    invalidHeaders: [],
    unexpected: [],
    versions: new Map(),
  };
  const mediator = createMediator({
    behaviors: [
      validation(),
      authorization(),
      timeout(),
      targetBehavior(createInMemoryUnitOfWork(), { types: ['shop.pay'] }),
    ],
    handlers: [
      handle(PlaceOrder, async (command, ctx) => {
        state.executions.push(ctx.execution);
        const { sku } = command.payload;
        switch (sku) {
          case 'gone':
            throw new OutOfStockError(`${sku} is out of stock`);
          case 'boom':
            throw new Error('connection to db-secret-host:5432 refused');
          case 'missing':
            throw new NotFoundError('product', sku);
          case 'race':
            throw new ConcurrencyError(`product-${sku}`, 3, 4);
          case 'circuit':
            throw new CircuitOpenError('stock-api', Date.now() + 2_500);
          case 'slow':
            await new Promise((_, reject) =>
              ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason)),
            );
            break;
        }
        state.placed++;
        return { orderId: `o-${state.placed}` };
      }),
      handle(Pay, async (command) => {
        await state.payGate;
        state.paid++;
        return { paid: command.payload.cents };
      }),
      handle(ResetShop, () => ({ reset: true as const })),
      handle(RenameOrder, (command) => {
        const { id, expectedVersion } = command.payload;
        const current = state.versions.get(id) ?? 1;
        if (expectedVersion !== undefined && expectedVersion !== current)
          throw new ConcurrencyError(`order-${id}`, expectedVersion, current);
        state.versions.set(id, current + 1);
        return { id, version: current + 1 };
      }),
      handle(GetOrder, (query, ctx) => {
        state.executions.push(ctx.execution);
        if (query.payload.id === 'missing') throw new NotFoundError('order', 'missing');
        return {
          id: query.payload.id,
          verbose: query.payload.verbose ?? null,
          tenant: ctx.execution.tenantId ?? null,
          version: state.versions.get(query.payload.id) ?? 1,
        };
      }),
      handle(ListOrders, (query) => {
        const { page, pageSize, minTotal } = query.payload as {
          page: number;
          pageSize: number;
          minTotal?: number;
        };
        return { ...toPage([{ minTotal: minTotal ?? null }], 120, { page, pageSize }) };
      }),
      handleStream(WatchOrders, async function* (query, ctx) {
        state.streamsOpen++;
        try {
          const start = (query.payload.after ?? 0) + 1;
          for (let n = start; n < start + query.payload.count; n++) yield { position: n, n };
          if (query.payload.idleAfter === 1)
            await new Promise((_, reject) =>
              ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason)),
            );
        } finally {
          state.streamsClosed++;
        }
      }),
    ],
  });
  const options: HttpHandlerOptions = {
    mediator,
    routes: [
      commandRoute(PlaceOrder, { path: '/orders', status: 201 }),
      commandRoute(PlaceOrder, { path: '/slow-orders', timeout: 50 }),
      commandRoute(Pay, { path: '/payments', idempotencyKey: 'required' }),
      commandRoute(ResetShop, { path: '/reset' }),
      queryRoute(GetOrder, { path: '/orders/:id', etag: (order: { version: number }) => order.version }),
      commandRoute(RenameOrder, {
        path: '/orders/:id/name',
        ifMatch: 'expectedVersion',
        etag: (order: { version: number }) => order.version,
      }),
      queryRoute(ListOrders, { path: '/orders' }),
      streamRoute(WatchOrders, { path: '/orders/live', resumeField: 'after' }),
    ],
    maxBodyBytes: 64 * 1024,
    heartbeatMs: 30,
    authenticate: (request): Principal | undefined => {
      const auth = request.headers.get('authorization');
      if (auth === null || auth === undefined) return undefined;
      const m = /^Bearer ([a-z]+)$/.exec(auth);
      if (m === null) throw new AuthorizationError('request', 'malformed credentials', 'unauthenticated');
      return { id: m[1]!, roles: m[1] === 'root' ? ['admin'] : [] };
    },
    tenant: (request) => request.headers.get('x-tenant-id') ?? undefined,
    onInvalidHeader: (invalid) => state.invalidHeaders.push(invalid.header),
    onError: (error, info) => state.unexpected.push({ error, requestId: info.requestId }),
  };
  return { state, options };
}
