import { execFileSync } from 'node:child_process';
import {
  ConfigurationError,
  createMessageCatalog,
  createMetadata,
  defineCommand,
  defineEvent,
  definePaginatedQuery,
  defineQuery,
  isCqrsError,
  pagination,
  runWithContext,
  SerializationError,
  serializeMessage,
  toPage,
  UnknownMessageTypeError,
  ValidationError,
} from '@cqrs-ts/core';
import { isUuid, uuidv7, uuidv7Time } from '@cqrs-ts/core/spi';
import { type } from 'arktype';
import * as v from 'valibot';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';

const PlaceOrder = defineCommand('orders.place-order', {
  schema: z.object({ sku: z.string().min(1), quantity: z.number().int().positive() }),
  tags: ['orders'],
}).returns<{ orderId: string }>();

const GetOrder = defineQuery('orders.get-order')
  .withPayload<{ id: string }>()
  .returns<{ id: string } | null>();
const OrderPlaced = defineEvent('orders.order-placed', {
  topic: 'orders',
  category: 'notification',
}).withPayload<{
  orderId: string;
}>();

describe('uuidv7', () => {
  it('produces valid, unique, time-ordered ids', () => {
    const ids = Array.from({ length: 10_000 }, () => uuidv7());
    expect(new Set(ids).size).toBe(ids.length);
    for (const id of ids)
      expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect([...ids].sort()).toEqual(ids);
    expect(Math.abs(uuidv7Time(ids[0]!) - Date.now())).toBeLessThan(5_000);
    expect(isUuid(ids[0])).toBe(true);
    expect(isUuid('not-a-uuid')).toBe(false);
  });
});

describe('message definitions', () => {
  it('creates frozen messages with complete metadata', () => {
    const before = Date.now();
    const cmd = PlaceOrder.create({ sku: 'A-1', quantity: 2 }, { requestedBy: 'user-1', tenantId: 'acme' });
    expect(cmd.kind).toBe('command');
    expect(cmd.type).toBe('orders.place-order');
    expect(cmd.payload).toEqual({ sku: 'A-1', quantity: 2 });
    const m = cmd.metadata;
    expect(isUuid(m.requestId)).toBe(true);
    expect(m.correlationId).toBe(m.requestId);
    expect(m.causationId).toBeUndefined();
    expect(m.requestedBy).toBe('user-1');
    expect(m.tenantId).toBe('acme');
    expect(m.requestedAt.endsWith('Z')).toBe(true);
    expect(Date.parse(m.requestedAt)).toBeGreaterThanOrEqual(before - 1);
    expect(Object.isFrozen(cmd)).toBe(true);
    expect(Object.isFrozen(cmd.metadata)).toBe(true);
    expect(Object.isFrozen(cmd.payload)).toBe(true);
  });

  it('creates messages whose payload holds binary data (left unfrozen: typed arrays cannot be frozen)', () => {
    // Binary data does not survive JSON: withPayload refuses it, a schema (for a binary serializer) carries it.
    const Blob = defineCommand('files.store', {
      schema: z.object({ name: z.string(), data: z.instanceof(Uint8Array) }),
    });
    const cmd = Blob.create({ name: 'a', data: new Uint8Array([1, 2, 3]) });
    expect(Object.isFrozen(cmd.payload)).toBe(true);
    expect(cmd.payload.data).toEqual(new Uint8Array([1, 2, 3]));
  });

  it('throws on any mutation attempt (ESM is strict mode)', () => {
    const cmd = PlaceOrder.create({ sku: 'A-1', quantity: 2 });
    expect(() => {
      (cmd as { type: string }).type = 'x';
    }).toThrow(TypeError);
    expect(() => {
      (cmd.metadata as { correlationId: string }).correlationId = 'x';
    }).toThrow(TypeError);
    expect(() => {
      (cmd.payload as { sku: string }).sku = 'B';
    }).toThrow(TypeError);
    const nested = defineCommand('t.nested').withPayload<{ lines: { sku: string }[] }>();
    const n = nested.create({ lines: [{ sku: 'a' }] });
    expect(() => {
      n.payload.lines.push({ sku: 'b' });
    }).toThrow(TypeError);
    expect(() => {
      (n.payload.lines[0] as { sku: string }).sku = 'z';
    }).toThrow(TypeError);
  });

  it('keeps stable string names, not class names', () => {
    expect(PlaceOrder.type).toBe('orders.place-order');
    expect(OrderPlaced.topic).toBe('orders');
    expect(OrderPlaced.category).toBe('notification');
    expect(defineEvent('x.happened').topic).toBe('x.happened');
    expect(PlaceOrder.tags).toEqual(['orders']);
  });

  it('rejects invalid type names and schemas at definition time', () => {
    expect(() => defineCommand('')).toThrow(ConfigurationError);
    expect(() => defineCommand('has space')).toThrow(ConfigurationError);
    expect(() => defineCommand('x'.repeat(201))).toThrow(ConfigurationError);
    expect(() => defineCommand('a<script>')).toThrow(ConfigurationError);
    expect(() => defineCommand('ok', { schema: {} as never })).toThrow(/Standard Schema/);
    expect(() => defineEvent('e', { category: 'weird' as never })).toThrow(ConfigurationError);
  });

  it('rejects non-object payloads and malformed metadata with a typed validation error', () => {
    expect(() => PlaceOrder.create(null as never)).toThrow(ValidationError);
    expect(() => PlaceOrder.create([] as never)).toThrow(ValidationError);
    expect(() => PlaceOrder.create('x' as never)).toThrow(ValidationError);
    try {
      PlaceOrder.create(
        { sku: 'a', quantity: 1 },
        {
          requestId: 'nope',
          correlationId: 'bad\r\nInjected: yes',
          requestedBy: 'x\u0000',
          requestedAt: 'yesterday',
          tenantId: '',
          traceparent: '00-zz',
        },
      );
      expect.unreachable();
    } catch (error) {
      expect(isCqrsError(error, 'CQRS_VALIDATION')).toBe(true);
      const paths = (error as ValidationError).issues.map((i) => i.path.join('.'));
      expect(paths).toEqual([
        'metadata.requestId',
        'metadata.correlationId',
        'metadata.tenantId',
        'metadata.requestedBy',
        'metadata.traceparent',
        'metadata.requestedAt',
      ]);
    }
    expect(() => createMetadata({ correlationId: 'x'.repeat(257) })).toThrow(ValidationError);
    expect(() => createMetadata({ attributes: { a: 1 as never } })).toThrow(ValidationError);
    const many = Object.fromEntries(Array.from({ length: 65 }, (_, i) => [`k${i}`, 'v']));
    expect(() => createMetadata({ attributes: many })).toThrow(/at most 64/);
  });

  it('accepts opaque (non-UUID) correlation ids and explicit metadata', () => {
    const requestId = uuidv7();
    const cmd = GetOrder.create(
      { id: '1' },
      {
        requestId,
        correlationId: 'req-abc_123',
        causationId: 'parent-1',
        requestedAt: new Date(0),
        attributes: { v: '2' },
      },
    );
    expect(cmd.metadata).toMatchObject({
      requestId,
      correlationId: 'req-abc_123',
      causationId: 'parent-1',
      requestedAt: '1970-01-01T00:00:00.000Z',
      attributes: { v: '2' },
    });
  });

  it('inherits correlation, causation, tenant and requester from the ambient context', () => {
    const cmd = runWithContext(
      {
        correlationId: 'corr-1',
        requestId: 'parent-req',
        execution: { tenantId: 't-1', user: { id: 'u-1' } },
      },
      () => PlaceOrder.create({ sku: 'a', quantity: 1 }),
    );
    expect(cmd.metadata).toMatchObject({
      correlationId: 'corr-1',
      causationId: 'parent-req',
      tenantId: 't-1',
      requestedBy: 'u-1',
    });
    const outside = PlaceOrder.create({ sku: 'a', quantity: 1 });
    expect(outside.metadata.correlationId).toBe(outside.metadata.requestId);
  });

  it('is() recognises its own messages only', () => {
    const cmd = PlaceOrder.create({ sku: 'a', quantity: 1 });
    expect(PlaceOrder.is(cmd)).toBe(true);
    expect(GetOrder.is(cmd)).toBe(false);
    expect(PlaceOrder.is(null)).toBe(false);
    expect(PlaceOrder.is({ type: 'orders.place-order', kind: 'command' })).toBe(false);
  });
});

describe('validation through Standard Schema', () => {
  it('collects every field error with path, message and code (zod)', async () => {
    const issues = await PlaceOrder.check({ sku: '', quantity: -1.5 });
    expect(new Set(issues.map((i) => i.path.join('.')))).toEqual(new Set(['sku', 'quantity']));
    for (const issue of issues) {
      expect(typeof issue.message).toBe('string');
      expect(issue.code).not.toBe('');
    }
    await expect(PlaceOrder.parse({ sku: '', quantity: 0 })).rejects.toBeInstanceOf(ValidationError);
    const ok = await PlaceOrder.parse({ sku: 'A', quantity: 3 });
    expect(ok.payload).toEqual({ sku: 'A', quantity: 3 });
  });

  it('works with valibot and arktype', async () => {
    const V = defineCommand('t.valibot', { schema: v.object({ email: v.pipe(v.string(), v.email()) }) });
    const A = defineCommand('t.arktype', { schema: type({ age: 'number.integer >= 0' }) });
    const vi = await V.check({ email: 'nope' });
    expect(vi).toHaveLength(1);
    expect(vi[0]).toMatchObject({ path: ['email'], code: 'email' });
    const ai = await A.check({ age: -1 });
    expect(ai).toHaveLength(1);
    expect(ai[0]!.path).toEqual(['age']);
    expect(await A.check({ age: 3 })).toEqual([]);
  });

  it('runs the business-rule hook after the schema, with warnings that do not fail', async () => {
    const Transfer = defineCommand('bank.transfer', {
      schema: z.object({ from: z.string(), to: z.string(), amount: z.number() }),
      validate: (p) => [
        ...(p.from === p.to
          ? [{ path: ['to'], message: 'must differ from source', code: 'same_account' }]
          : []),
        ...(p.amount > 1000
          ? [{ path: ['amount'], message: 'large transfer', code: 'large', severity: 'warning' as const }]
          : []),
      ],
    });
    await expect(Transfer.parse({ from: 'a', to: 'a', amount: 5 })).rejects.toMatchObject({
      issues: [{ path: ['to'], code: 'same_account' }],
    });
    const warned = await Transfer.parse({ from: 'a', to: 'b', amount: 5000 });
    expect(warned.payload.amount).toBe(5000);
    // The hook is not run when the schema fails.
    expect(await Transfer.check({ from: 'a' })).not.toContainEqual(
      expect.objectContaining({ code: 'same_account' }),
    );
  });

  it('uses the schema output in parse (transforms and stripping unknown keys)', async () => {
    const Tagged = defineCommand('t.strip', { schema: z.object({ name: z.string().trim() }) });
    const msg = await Tagged.parse({ name: '  x  ', extra: 'dropped' } as never);
    expect(msg.payload).toEqual({ name: 'x' });
  });
});

describe('paginated queries', () => {
  const ListOrders = definePaginatedQuery('orders.list', {
    schema: z.object({ status: z.enum(['open', 'closed']).optional() }),
    maxPageSize: 50,
  }).returns<string[]>();

  it('derives offset and limit', () => {
    const q = ListOrders.create({ page: 3, pageSize: 20, status: 'open' });
    expect(pagination(q)).toEqual({ page: 3, pageSize: 20, offset: 40, limit: 20 });
    expect(toPage(['a'], 41, q.payload)).toMatchObject({ totalPages: 3, hasNext: false, hasPrevious: true });
  });

  it('rejects out-of-range input instead of clamping', () => {
    for (const bad of [
      { page: 0, pageSize: 10 },
      { page: 1, pageSize: 0 },
      { page: 1, pageSize: 51 },
      { page: 1.5, pageSize: 10 },
      { page: -1, pageSize: 10 },
      { page: '1' as never, pageSize: 10 },
    ]) {
      expect(() => ListOrders.create(bad)).toThrow(ValidationError);
    }
    expect(() => ListOrders.create({ page: 1, pageSize: 50 })).not.toThrow();
    const Default = definePaginatedQuery('orders.default');
    expect(() => Default.create({ page: 1, pageSize: 100 })).not.toThrow();
    expect(() => Default.create({ page: 1, pageSize: 101 })).toThrow(/at most 100/);
    expect(() => definePaginatedQuery('bad.max', { maxPageSize: 0 })).toThrow(ConfigurationError);
  });

  it('keeps page fields through parse and JSON even when the schema strips them', async () => {
    const q = await ListOrders.parse({ page: 2, pageSize: 5, status: 'closed' });
    expect(q.payload).toEqual({ page: 2, pageSize: 5, status: 'closed' });
    expect(ListOrders.fromJSON(serializeMessage(q))).toEqual(q);
  });
});

describe('JSON round trip', () => {
  it('round-trips commands, queries and events to an equal, typed, frozen message', () => {
    const msgs = [
      PlaceOrder.create({ sku: 'A', quantity: 1 }, { tenantId: 't', attributes: { schema: 'v1' } }),
      GetOrder.create({ id: '9' }, { causationId: 'c-1' }),
      OrderPlaced.create({ orderId: 'o-1' }),
    ] as const;
    const catalog = createMessageCatalog([PlaceOrder, GetOrder, OrderPlaced]);
    for (const msg of msgs) {
      const back = catalog.fromJSON(JSON.stringify(msg));
      expect(back).toEqual(msg);
      expect(Object.isFrozen(back)).toBe(true);
      expect(Object.isFrozen(back.metadata)).toBe(true);
      expect(Object.isFrozen(back.payload)).toBe(true);
    }
    const typed = PlaceOrder.fromJSON(serializeMessage(msgs[0]));
    expect(typed.payload.quantity).toBe(1);
    // decoding does not pick up the ambient context
    const decoded = runWithContext({ correlationId: 'other', requestId: 'r' }, () =>
      GetOrder.fromJSON(JSON.parse(JSON.stringify(msgs[1]))),
    );
    expect(decoded.metadata.correlationId).toBe(msgs[1].metadata.correlationId);
  });

  it('gives typed errors for unknown names, malformed JSON and bad payloads', async () => {
    const catalog = createMessageCatalog([PlaceOrder, GetOrder]);
    const good = JSON.parse(JSON.stringify(PlaceOrder.create({ sku: 'A', quantity: 1 })));
    expect(() => catalog.fromJSON({ ...good, type: 'evil.type' })).toThrow(UnknownMessageTypeError);
    expect(() => catalog.fromJSON('{not json')).toThrow(SerializationError);
    expect(() => catalog.fromJSON('[]')).toThrow(SerializationError);
    expect(() => catalog.fromJSON('null')).toThrow(SerializationError);
    expect(() => PlaceOrder.fromJSON({ ...good, kind: 'query' })).toThrow(SerializationError);
    expect(() => PlaceOrder.fromJSON({ ...good, metadata: undefined })).toThrow(SerializationError);
    expect(() =>
      PlaceOrder.fromJSON({ ...good, metadata: { ...good.metadata, requestId: undefined } }),
    ).toThrow(ValidationError);
    expect(() => PlaceOrder.fromJSON({ ...good, payload: { sku: 5, quantity: 'x' } })).toThrow(
      ValidationError,
    );
    expect(() => PlaceOrder.fromJSON({ ...good, payload: null })).toThrow(ValidationError);
    expect(() => catalog.fromJSON('x'.repeat(2 * 1024 * 1024))).toThrow(/more than the/);
    expect(() => catalog.fromJSON(JSON.stringify(good), { maxLength: 10 })).toThrow(SerializationError);
    await expect(catalog.decode({ ...good, type: 'nope' })).rejects.toBeInstanceOf(UnknownMessageTypeError);
  });

  it('ignores prototype-pollution keys and strips unknown fields through the schema', () => {
    const good = JSON.parse(JSON.stringify(PlaceOrder.create({ sku: 'A', quantity: 1 })));
    const text = JSON.stringify({ ...good, payload: { sku: 'A', quantity: 1 } }).replace(
      '"payload":{',
      '"payload":{"__proto__":{"polluted":true},',
    );
    const msg = PlaceOrder.fromJSON(text);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(Object.keys(msg.payload)).toEqual(['sku', 'quantity']);
  });

  it('reports payloads that cannot be serialized', () => {
    const Weird = defineCommand('t.weird', { schema: z.object({ n: z.bigint() }) });
    expect(() => serializeMessage(Weird.create({ n: 1n }))).toThrow(SerializationError);
  });

  it('refuses two definitions with one type in a catalog', () => {
    expect(() => createMessageCatalog([PlaceOrder, defineCommand('orders.place-order')])).toThrow(
      ConfigurationError,
    );
  });

  it('supports asynchronous schemas through decode()', async () => {
    const asyncSchema = {
      '~standard': {
        version: 1 as const,
        vendor: 'test',
        validate: async (value: unknown) =>
          typeof (value as { id?: unknown }).id === 'string'
            ? { value: value as { id: string } }
            : { issues: [{ message: 'id required', path: ['id'] }] },
      },
    };
    const Async = defineQuery('t.async', { schema: asyncSchema });
    const msg = Async.create({ id: 'x' });
    expect(() => Async.fromJSON(JSON.stringify(msg))).toThrow(/decode\(\)/);
    expect(await Async.decode(JSON.stringify(msg))).toEqual(msg);
    await expect(Async.decode({ ...JSON.parse(JSON.stringify(msg)), payload: {} })).rejects.toMatchObject({
      issues: [{ path: ['id'], code: 'invalid' }],
    });
  });
});

describe('message freezing by environment', () => {
  // A fresh process per environment: the setting is read once, when core loads.
  const frozenIn = (env: Record<string, string>) => {
    const script = `
      import { defineCommand, defineEvent } from '@cqrs-ts/core';
      const c = defineCommand('env.c').withPayload().create({ a: { b: 1 } });
      const e = defineEvent('env.e').withPayload().create({ a: 1 });
      console.log(JSON.stringify([c, c.metadata, c.payload, c.payload.a, e, e.metadata, e.payload].map(Object.isFrozen)));`;
    const out = execFileSync(
      process.execPath,
      ['--conditions=@cqrs-ts/source', '--input-type=module', '-e', script],
      {
        env: { PATH: process.env.PATH, ...env },
        encoding: 'utf8',
      },
    );
    return JSON.parse(out) as boolean[];
  };

  it('freezes messages deeply outside production, and not in production unless CQRS_FREEZE_MESSAGES=1', () => {
    expect(frozenIn({ NODE_ENV: 'development' })).toEqual(Array(7).fill(true));
    expect(frozenIn({})).toEqual(Array(7).fill(true));
    expect(frozenIn({ NODE_ENV: 'production' })).toEqual(Array(7).fill(false));
    expect(frozenIn({ NODE_ENV: 'production', CQRS_FREEZE_MESSAGES: '1' })).toEqual(Array(7).fill(true));
    expect(frozenIn({ NODE_ENV: 'test', CQRS_FREEZE_MESSAGES: '0' })).toEqual(Array(7).fill(false));
  });
});
