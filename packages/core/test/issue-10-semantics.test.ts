/**
 * Issue 10, "Semantics users read from the names": retries count retries, one retryability rule, validate hook
 * results, payload types that survive JSON, checked inputs, reported header problems, and message metadata that
 * stays unique, time-ordered and exact while costing little.
 */
import {
  AuthorizationError,
  ConfigurationError,
  createMediator,
  createMessageProcessor,
  createMetadata,
  defineCommand,
  defineEvent,
  definePaginatedQuery,
  defineQuery,
  EventDispatchError,
  extractContext,
  handle,
  type InferMessage,
  type InvalidHeader,
  isRetryable,
  on,
  ProcessingError,
  pagination,
  retry,
  StorageError,
  TimeoutError,
  timeout,
  toPage,
  ValidationError,
  validation,
} from '@cqrs-ts/core';
import { isUuid, uuidv7, uuidv7Time } from '@cqrs-ts/core/spi';
import { describe, expect, expectTypeOf, it } from 'vitest';
import { z } from 'zod';
import { isoTimestamp } from '../src/messages/metadata.ts';

describe('retries: N means N retries after the first attempt', () => {
  const calls = async (handlerRetries: number | undefined, maxAttempts: number | undefined) => {
    let n = 0;
    const Fail = defineCommand('t.fail');
    const mediator = createMediator({
      handlers: [
        handle(
          Fail,
          () => {
            n++;
            throw new Error('down');
          },
          handlerRetries === undefined ? {} : { retries: handlerRetries, backoff: { initialMs: 0 } },
        ),
      ],
      behaviors: [
        retry(
          maxAttempts === undefined
            ? { backoff: { initialMs: 0 } }
            : { maxAttempts, backoff: { initialMs: 0 } },
        ),
      ],
    });
    await expect(mediator.send(Fail.create({}))).rejects.toThrow('down');
    return n;
  };

  it('calls the handler N + 1 times; maxAttempts counts attempts; retries: 0 means no retry', async () => {
    expect(await calls(2, undefined)).toBe(3);
    expect(await calls(1, undefined)).toBe(2);
    expect(await calls(undefined, 3)).toBe(3);
    expect(await calls(0, 5)).toBe(1);
    expect(await calls(3, 2)).toBe(4);
  });

  it('refuses retry counts and backoffs that are not numbers it can use', () => {
    const C = defineCommand('t.r');
    for (const bad of [-1, 1.5, 1001, Number.NaN, '3', null]) {
      expect(() => handle(C, () => undefined, { retries: bad as never })).toThrow(
        /t\.r: retries must be an integer from 0 to 1000 \(retries after the first attempt: 2 means 3 calls at most\)/,
      );
    }
    expect(() => retry({ maxAttempts: 0 })).toThrow(/maxAttempts must be an integer from 1 to 1001/);
    expect(() => handle(C, () => undefined, { backoff: { factor: 0.5 } })).toThrow(
      /backoff\.factor must be a number >= 1/,
    );
    expect(() => handle(C, () => undefined, { backoff: { initialMs: -1 } })).toThrow(/backoff\.initialMs/);
    expect(() => retry({ backoff: { jitter: 'some' as never } })).toThrow(/jitter must be 'full' or 'none'/);
    expect(() => handle(C, () => undefined, { backoff: 5 as never })).toThrow(/backoff must be an object/);
    expect(() => handle(C, () => undefined, { retryOn: true as never })).toThrow(
      /retryOn must be a function/,
    );
  });
});

describe('one retryability rule for the retry behavior and the broker consumers', () => {
  const cases: [string, unknown, boolean][] = [
    ['a validation error', new ValidationError('t', [{ path: [], message: 'bad', code: 'x' }]), false],
    ['an authorization error', new AuthorizationError('t'), false],
    ['a configuration error', new ConfigurationError('oops'), false],
    ['a driver error', new Error('ECONNRESET'), true],
    ['a TypeError from a handler', new TypeError('x is undefined'), true],
    ['a timeout', new TimeoutError('t', 10), true],
    ['a lost connection', new StorageError('connection', 'gone'), true],
    ['a unique violation', new StorageError('unique-violation', 'dup'), false],
    ['a mapped validation error', new ProcessingError('t', new ValidationError('t', [])), false],
    ['a mapped driver error', new ProcessingError('t', new Error('down')), true],
    [
      'event handlers that failed for good',
      new EventDispatchError([
        { eventType: 'e', eventId: 'i', handler: 'h', error: new AuthorizationError('e') },
      ]),
      false,
    ],
    [
      'event handlers of which one may recover',
      new EventDispatchError([
        { eventType: 'e', eventId: 'i', handler: 'h', error: new AuthorizationError('e') },
        { eventType: 'e', eventId: 'i', handler: 'g', error: new Error('down') },
      ]),
      true,
    ],
  ];

  it.each(cases)('classifies %s the same way in both', async (_name, error, expected) => {
    expect(isRetryable(error)).toBe(expected);
    let attempts = 0;
    const C = defineCommand('t.c');
    const mediator = createMediator({
      handlers: [
        handle(
          C,
          () => {
            attempts++;
            throw error;
          },
          { retries: 1, backoff: { initialMs: 0 } },
        ),
      ],
      behaviors: [retry()],
    });
    await mediator.send(C.create({})).catch(() => {});
    expect(attempts > 1).toBe(expected);
    const Ev = defineEvent('t.ev');
    // Without pausing: a processor that pauses holds a message whose dependency is down (no disposition until it
    // is back), which the consumer contract covers; here each error must get its disposition at once.
    const processor = createMessageProcessor({
      name: 'c',
      pause: false,
      handle: () => {
        throw error;
      },
    });
    const event = Ev.create({});
    const disposition = await processor.process({
      attributes: {
        specversion: '1.0',
        id: event.metadata.requestId,
        source: 'test',
        type: Ev.type,
        time: event.metadata.requestedAt,
        correlationid: event.metadata.correlationId,
        datacontenttype: 'application/json',
      },
      data: new TextEncoder().encode('{}'),
      deliveryAttempt: 1,
      source: 'test',
    });
    expect(disposition.action).toBe(expected ? 'retry' : 'dead-letter');
  });
});

describe('validate hooks may answer in every natural way', () => {
  const run = async (result: unknown) => {
    const C = defineCommand('t.v', { validate: () => result as never }).returns<string>();
    const mediator = createMediator({ handlers: [handle(C, () => 'ok')], behaviors: [validation()] });
    return mediator.send(C.create({})).catch((e: unknown) => e);
  };

  it('maps true, nothing, false, a message, an issue and a list to a result or field issues', async () => {
    for (const valid of [true, undefined, null, []]) expect(await run(valid)).toBe('ok');
    expect(await run(false)).toMatchObject({
      code: 'CQRS_VALIDATION',
      issues: [{ path: [], message: 'failed its validate hook', code: 'invalid' }],
    });
    expect(await run('sku is sold out')).toMatchObject({
      issues: [{ path: [], message: 'sku is sold out', code: 'invalid', severity: 'error' }],
    });
    expect(await run({ path: ['sku'], message: 'unknown sku' })).toMatchObject({
      issues: [{ path: ['sku'], message: 'unknown sku', code: 'invalid' }],
    });
    expect(await run([{ message: 'a' }, { path: ['b'], message: 'b', code: 'too_big' }])).toMatchObject({
      issues: [
        { path: [], message: 'a' },
        { path: ['b'], message: 'b', code: 'too_big' },
      ],
    });
    expect(await run({ message: 'just a hint', severity: 'warning' })).toBe('ok');
  });

  it('answers any other result with a configuration error that says what to return', async () => {
    for (const odd of [
      42,
      '',
      { path: ['x'] },
      { message: 5 },
      [1],
      { message: 'm', path: 'x' },
      () => true,
    ]) {
      const error = await run(odd);
      expect(error).toBeInstanceOf(ConfigurationError);
      expect((error as Error).message).toMatch(
        /^the validate hook of t\.v returned .+; return true or nothing when valid, or false, a message, an issue/,
      );
    }
    const tooMany = Array.from({ length: 1001 }, () => ({ message: 'x' }));
    expect(await run(tooMany)).toBeInstanceOf(ConfigurationError);
  });

  it('gives the same answers to check() and parse()', async () => {
    const C = defineCommand('t.parse', { validate: () => 'never valid' });
    expect(await C.check({})).toEqual([
      { path: [], message: 'never valid', code: 'invalid', severity: 'error' },
    ]);
    await expect(C.parse({})).rejects.toBeInstanceOf(ValidationError);
  });

  it('types definition hooks against the payload declared with withPayload, with no casts', async () => {
    const Reserve = defineCommand('stock.reserve')
      .withPayload<{ sku: string; quantity: number }>({
        validate: (p) => {
          expectTypeOf(p).toEqualTypeOf<{ sku: string; quantity: number }>();
          return p.quantity > 0 || { path: ['quantity'], message: 'must be positive' };
        },
        authorize: (m, ctx) => m.payload.sku !== 'locked' && ctx.execution.user !== undefined,
      })
      .returns<string>();
    const Moved = defineEvent('stock.moved').withPayload<{ sku: string }>({ key: (p) => p.sku });
    expect(Moved.create({ sku: 'A' })).toMatchObject({ key: 'A' });
    const mediator = createMediator({
      handlers: [handle(Reserve, (c) => c.payload.sku)],
      behaviors: [validation()],
      unenforced: ['authorization'],
    });
    await expect(mediator.send(Reserve.create({ sku: 'A', quantity: 0 }))).rejects.toMatchObject({
      issues: [{ path: ['quantity'], message: 'must be positive' }],
    });
    expect(await mediator.send(Reserve.create({ sku: 'A', quantity: 1 }))).toBe('A');
    expect(() =>
      defineCommand('t.twice', { validate: () => true }).withPayload<{ n: number }>({ validate: () => true }),
    ).toThrow(/validate is given twice/);
    expect(() => defineCommand('t.odd').withPayload<{ n: number }>({ schema: {} } as never)).toThrow(
      /withPayload does not take "schema"/,
    );
    expect(() => defineCommand('t.key').withPayload<{ n: number }>({ key: () => 'k' } as never)).toThrow(
      /only events have an ordering key/,
    );
  });
});

describe('payload types round-trip through JSON, or the type checker refuses them', () => {
  it('refuses payload types that JSON cannot carry', () => {
    // @ts-expect-error a Date comes back from JSON as a string
    defineCommand('t.date').withPayload<{ at: Date }>();
    // @ts-expect-error a bigint does not survive JSON
    defineEvent('t.big').withPayload<{ n: bigint }>();
    // @ts-expect-error a Map comes back as {}
    defineQuery('t.map').withPayload<{ m: Map<string, number> }>();
    // @ts-expect-error binary data does not survive JSON
    defineCommand('t.bin').withPayload<{ data: Uint8Array }>();
    // @ts-expect-error nested deep inside
    defineCommand('t.deep').withPayload<{ lines: { at?: Date }[] }>();
    interface Order {
      readonly id: string;
      readonly lines: readonly { sku: string; quantity: number; note?: string | null }[];
      readonly tags: Record<string, string>;
    }
    defineCommand('t.ok').withPayload<Order>();
    defineCommand('t.unknown').withPayload<unknown>();
  });

  it('carries a Date when a schema converts it, so the decoded message has the type it claims', () => {
    const Scheduled = defineEvent('t.scheduled', { schema: z.object({ at: z.coerce.date() }) });
    const event = Scheduled.create({ at: new Date('2030-01-02T03:04:05.678Z') });
    const back = Scheduled.fromJSON(JSON.stringify(event));
    expectTypeOf(back.payload.at).toEqualTypeOf<Date>();
    expect(back.payload.at).toBeInstanceOf(Date);
    expect(back.payload.at.toISOString()).toBe('2030-01-02T03:04:05.678Z');
    const Strict = defineEvent('t.strict', { schema: z.object({ at: z.date() }) });
    expect(() => Strict.fromJSON(JSON.stringify(Strict.create({ at: new Date() })))).toThrow(ValidationError);
  });
});

describe('public entry points check what they are given', () => {
  const Q = defineQuery('t.q').returns<string>();
  const mediator = createMediator({ handlers: [handle(Q, () => 'ok')], behaviors: [timeout()] });
  const rejection = async (options: unknown) => {
    const error = await mediator.query(Q.create({}), options as never).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConfigurationError);
    return (error as Error).message;
  };

  it('refuses bad per-dispatch options with a typed error saying what to pass', async () => {
    for (const t of [Number.NaN, -5, 0, '10', Number.POSITIVE_INFINITY, 2 ** 31]) {
      expect(await rejection({ timeout: t })).toMatch(
        /t\.q: timeout must be a number of ms from 1 to 2147483647/,
      );
    }
    for (const s of [{}, 'abort', { aborted: false }]) {
      expect(await rejection({ signal: s })).toMatch(
        /signal must be an AbortSignal \(e\.g\. AbortSignal\.timeout/,
      );
    }
    expect(await rejection({ context: 'admin' })).toMatch(/context must be an execution context object/);
    expect(await rejection('fast')).toMatch(/dispatch options must be an object/);
    expect(await mediator.query(Q.create({}), { timeout: 1000, signal: new AbortController().signal })).toBe(
      'ok',
    );
  });

  it('refuses messages made by hand without metadata, and things that are not messages', async () => {
    const handMade = { kind: 'query', type: 't.q', payload: {} };
    await expect(mediator.query(handMade as never)).rejects.toThrow(
      /t\.q has no metadata: create it with its definition's create\(payload\), or rebuild it from JSON with fromJSON\(json\)/,
    );
    await expect(mediator.query({ ...handMade, metadata: null } as never)).rejects.toMatchObject({
      code: 'CQRS_INVALID_MESSAGE',
    });
    for (const junk of [undefined, null, 42, 'x', { kind: 'query' }, { kind: 'query', type: 7 }]) {
      await expect(mediator.query(junk as never)).rejects.toMatchObject({ code: 'CQRS_INVALID_MESSAGE' });
    }
    await expect(
      mediator.publish({ kind: 'event', type: 't.e', payload: {} } as never),
    ).rejects.toMatchObject({
      code: 'CQRS_INVALID_MESSAGE',
    });
    await expect(mediator.stream(handMade as never).next()).rejects.toMatchObject({
      code: 'CQRS_INVALID_MESSAGE',
    });
  });

  it('refuses bad mediator, publish and handler options', async () => {
    expect(() => createMediator({ behaviors: timeout() as never })).toThrow(
      /behaviors must be an array, got a object/,
    );
    expect(() => createMediator({ handlers: 'x' as never })).toThrow(/handlers must be an array/);
    expect(() => createMediator({ messages: [{}] as never })).toThrow(
      /messages\[0\] is not a message definition/,
    );
    expect(() => createMediator(null as never)).toThrow(/createMediator takes an options object/);
    expect(() => createMediator({ events: { concurrency: 1e9 } })).toThrow(/events\.concurrency/);
    expect(() => createMediator({ events: { failurePolicy: 'ignore' as never } })).toThrow(/failurePolicy/);
    expect(() => createMediator({ onError: 'log' as never })).toThrow(/onError must be a function/);
    const E = defineEvent('t.e');
    const events = createMediator({ handlers: [on(E, () => {})] });
    await expect(events.publish(E.create({}), { failFast: 'yes' as never })).rejects.toThrow(
      /failFast must be true or false/,
    );
    await expect(events.publish(E.create({}), { concurrency: 0 })).rejects.toThrow(
      /concurrency must be an integer from 1/,
    );
    await expect(events.publish(E.create({}), { strategy: 'random' as never })).rejects.toThrow(
      /unknown publish strategy "random"; use parallel, sequential, fire-and-forget/,
    );
    const C = defineCommand('t.c');
    for (const t of [0, -1, Number.NaN, 2 ** 31, '5']) {
      expect(() => handle(C, () => undefined, { timeout: t as never })).toThrow(
        /timeout must be a number of ms/,
      );
    }
    for (const c of ['', 'a b', 'x'.repeat(201), 7, false]) {
      expect(() => handle(C, () => undefined, { circuit: c as never })).toThrow(
        /circuit must be true .* or the name/,
      );
    }
    expect(() => handle(C, () => undefined, 'fast' as never)).toThrow(/handler options must be an object/);
    expect(() => handle(C, () => undefined, { validate: 'strict' as never })).toThrow(
      /validate must be a function/,
    );
    expect(() => timeout({ defaultMs: Number.NaN })).toThrow(/defaultMs/);
    expect(() => defineCommand('t.o', 'opts' as never)).toThrow(/options must be an object/);
    expect(() => defineCommand('t.o', { authorize: true as never })).toThrow(/authorize must be a function/);
  });

  it('refuses pages whose offset is no longer a safe integer', () => {
    const List = definePaginatedQuery('t.list').returns<string[]>();
    const huge = Math.floor(Number.MAX_SAFE_INTEGER / 10);
    expect(() => List.create({ page: huge, pageSize: 100 })).toThrow(/page \d+ is too large: its offset/);
    expect(() => List.create({ page: Number.MAX_VALUE, pageSize: 1 })).toThrow(ValidationError);
    expect(pagination(List.create({ page: 3, pageSize: 20 }))).toEqual({
      page: 3,
      pageSize: 20,
      offset: 40,
      limit: 20,
    });
    expect(() => pagination({ page: huge, pageSize: 100 })).toThrow(/too large/);
    expect(() => pagination({ page: 0, pageSize: 10 })).toThrow(ValidationError);
    expect(() => pagination({} as never)).toThrow(/page must be an integer >= 1/);
    expect(() => toPage([], -1, { page: 1, pageSize: 10 })).toThrow(/total must be an integer >= 0/);
    expect(() => toPage([], Number.NaN, { page: 1, pageSize: 10 })).toThrow(ValidationError);
    expect(() => toPage('items' as never, 1, { page: 1, pageSize: 10 })).toThrow(/items must be an array/);
    expect(toPage(['a'], 21, { page: 2, pageSize: 10 })).toMatchObject({
      totalPages: 3,
      hasNext: true,
      hasPrevious: true,
    });
  });
});

describe('inbound headers that fail validation are reported, not silently replaced', () => {
  it('names each invalid header, keeps the valid ones, and falls back as before', () => {
    const reported: InvalidHeader[] = [];
    const got = extractContext(
      {
        'X-Correlation-ID': 'bad id with spaces',
        'x-causation-id': 'ok-cause',
        traceparent: '00-zz-bad',
      },
      { onInvalid: (i) => reported.push(i) },
    );
    expect(reported).toEqual([
      { header: 'x-correlation-id', reason: 'not 1 to 256 printable ASCII characters without spaces' },
      { header: 'traceparent', reason: 'not a W3C traceparent (00-<32 hex>-<16 hex>-<2 hex>)' },
    ]);
    expect(got.causationId).toBe('ok-cause');
    expect(isUuid(got.correlationId)).toBe(true);
    expect(got.traceparent).toBeUndefined();
  });

  it('warns by default, and throws a ValidationError naming the headers when asked', async () => {
    const warnings: string[] = [];
    const listener = (w: Error) => warnings.push(`${w.name}: ${w.message}`);
    process.on('warning', listener);
    try {
      extractContext({ 'x-causation-id': 'x'.repeat(300) });
      await new Promise((r) => setImmediate(r)); // warnings are emitted on the next tick
    } finally {
      process.off('warning', listener);
    }
    expect(warnings).toEqual([
      'CqrsHeaderWarning: ignored inbound header x-causation-id: not 1 to 256 printable ASCII characters without spaces',
    ]);
    let error: unknown;
    try {
      extractContext({ 'x-correlation-id': 'a\r\nb', tracestate: 'x' }, { invalid: 'throw' });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ValidationError);
    expect((error as ValidationError).issues).toEqual([
      expect.objectContaining({ path: ['headers', 'x-correlation-id'], code: 'invalid_header' }),
    ]);
    expect(() => extractContext(null as never)).toThrow(ConfigurationError);
  });
});

describe('message metadata: unique, time-ordered, exact and JSON-serializable as before', () => {
  it('makes unique, ordered UUID v7 request ids, also many per millisecond', () => {
    const ids = Array.from({ length: 20_000 }, () => uuidv7());
    expect(new Set(ids).size).toBe(ids.length);
    expect([...ids].sort()).toEqual(ids);
    for (const id of [ids[0]!, ids.at(-1)!]) {
      expect(isUuid(id)).toBe(true);
      expect(id[14]).toBe('7');
      expect('89ab').toContain(id[19]!);
    }
    expect(Math.abs(uuidv7Time(ids.at(-1)!) - Date.now())).toBeLessThan(5_000);
    const Ping = defineCommand('t.ping');
    const messages = Array.from({ length: 5_000 }, () => Ping.create({}).metadata.requestId);
    expect(new Set(messages).size).toBe(messages.length);
    expect([...messages].sort()).toEqual(messages);
  });

  it('formats timestamps exactly as Date.prototype.toISOString', () => {
    const samples = [
      0,
      1,
      86_399_999,
      86_400_000,
      951_782_400_000, // 2000-02-29
      1_709_251_199_999,
      4_102_444_800_000, // 2100-01-01
      253_402_300_799_999, // 9999-12-31T23:59:59.999Z
      Date.now(),
    ];
    for (let i = 0; i < 2000; i++) samples.push(Math.floor(Math.random() * 253_402_300_799_999));
    for (const ms of samples) expect(isoTimestamp(ms)).toBe(new Date(ms).toISOString());
    const before = Date.now();
    const at = Date.parse(createMetadata().requestedAt);
    expect(at).toBeGreaterThanOrEqual(before);
    expect(at).toBeLessThanOrEqual(Date.now());
  });

  it('keeps messages frozen, plain and JSON round-trippable', () => {
    const Placed = defineEvent('t.placed', { key: (p: { id: string }) => p.id }).withPayload<{
      id: string;
    }>();
    const event = Placed.create({ id: 'o-1' }, { correlationId: 'c-1', attributes: { v: '2' } });
    for (const e of [event, Placed.create({ id: 'o-2' })]) {
      expect([Object.isFrozen(e), Object.isFrozen(e.metadata), Object.isFrozen(e.payload)]).toEqual([
        true,
        true,
        true,
      ]);
      expect(Placed.fromJSON(JSON.stringify(e))).toEqual(e);
    }
    expect(Object.keys(event.metadata)).toEqual([
      'requestId',
      'correlationId',
      'causationId',
      'requestedBy',
      'requestedAt',
      'tenantId',
      'traceparent',
      'attributes',
    ]);
    const back = Placed.fromJSON(JSON.parse(JSON.stringify(event)));
    expect(back).toEqual(event);
    expectTypeOf(back).toEqualTypeOf<InferMessage<typeof Placed>>();
  });
});
