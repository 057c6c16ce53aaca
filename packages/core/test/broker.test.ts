import { gzipSync } from 'node:zlib';
import {
  createInMemoryBroker,
  createMediator,
  createMessageCatalog,
  createMessageProcessor,
  currentContext,
  type Disposition,
  defineEvent,
  type IncomingMessage,
  isCqrsError,
  jsonPayloadSerializer,
  on,
  runWithContext,
  validation,
} from '@cqrs-ts/core';
import {
  compressData,
  createEnvelopeDecoder,
  createKeyedLimiter,
  createOutboxEncoder,
  eventAttributes,
  eventFromEnvelope,
  fromBindingHeaders,
  toBindingHeaders,
} from '@cqrs-ts/core/spi';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { waitFor } from './support/services.ts';

const Shipped = defineEvent('shop.shipped', {
  schema: z.object({ orderId: z.string().min(1), items: z.number().int() }),
  key: (p) => p.orderId,
});
const catalog = createMessageCatalog([Shipped]);
const TRACE = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';

function incoming(
  event = Shipped.create({ orderId: 'o1', items: 2 }),
  overrides: Partial<IncomingMessage> = {},
): IncomingMessage {
  return {
    attributes: eventAttributes(event, 'svc', 'application/json', (event as { key?: string }).key ?? null),
    data: jsonPayloadSerializer.serialize(event),
    deliveryAttempt: 1,
    source: 'test',
    ...overrides,
  };
}

describe('CloudEvents envelope', () => {
  it('carries metadata as attributes and rebuilds the same event', async () => {
    const event = await runWithContext(
      { correlationId: 'corr-1', causationId: 'cause-1', traceparent: TRACE },
      () =>
        Shipped.builder()
          .with({ orderId: 'o9', items: 1 })
          .tenant('t1')
          .by('alice')
          .attribute('region', 'eu')
          .build(),
    );
    const attrs = eventAttributes(event, 'orders-svc', 'application/json', 'o9');
    expect(attrs).toMatchObject({
      specversion: '1.0',
      id: event.metadata.requestId,
      source: 'orders-svc',
      type: 'shop.shipped',
      time: event.metadata.requestedAt,
      datacontenttype: 'application/json',
      subject: 'o9',
      partitionkey: 'o9',
      correlationid: 'corr-1',
      tenantid: 't1',
      requestedby: 'alice',
      traceparent: TRACE,
    });
    const rebuilt = eventFromEnvelope(attrs, jsonPayloadSerializer.serialize(event));
    expect(rebuilt).toEqual({
      kind: 'event',
      type: event.type,
      payload: event.payload,
      metadata: { ...event.metadata },
    });
  });

  it('maps attributes to binding headers and back, ignoring foreign and unsafe names', () => {
    const attrs = eventAttributes(Shipped.create({ orderId: 'o1', items: 1 }), 's', 'application/json', null);
    const headers = toBindingHeaders(attrs, 'ce_');
    expect(headers['content-type']).toBe('application/json');
    expect(headers.ce_id).toBe(attrs.id);
    expect(headers.datacontenttype).toBeUndefined();
    const back = fromBindingHeaders(
      { ...headers, CE_TYPE: 'shop.shipped', 'x-other': 'no', ce___proto__: 'polluted', ce_constructor: 'x' },
      'ce_',
    );
    expect(back).toEqual(attrs);
    expect(Object.getPrototypeOf(back)).toBe(Object.prototype);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it('adds serializer attributes (dataschema, datacontenttype override) without overriding the core ones', () => {
    const serializer = {
      ...jsonPayloadSerializer,
      contentType: 'application/x-test',
      attributes: (e: { type: string }) => ({
        dataschema: `urn:test:${e.type}`,
        datacontenttype: 'application/json',
        id: 'forged',
      }),
    };
    const event = Shipped.create({ orderId: 'o1', items: 1 });
    const [row] = createOutboxEncoder({ serializer }).encode([event], 0);
    expect(row?.headers).toMatchObject({
      dataschema: 'urn:test:shop.shipped',
      datacontenttype: 'application/json',
      id: event.metadata.requestId,
    });
    // without the hook nothing changes (backwards compatible)
    const [plain] = createOutboxEncoder({
      serializer: { ...jsonPayloadSerializer, contentType: 'application/x-test' },
    }).encode([event], 0);
    expect(plain?.headers.dataschema).toBeUndefined();
    expect(plain?.headers.datacontenttype).toBe('application/x-test');
    expect(() => eventAttributes(event, 's', 'application/json', null, { 'Bad-Name': 'x' })).toThrowError(
      /not a valid CloudEvents attribute/,
    );
    expect(() => eventAttributes(event, 's', 'application/json', null, { dataschema: '' })).toThrowError(
      /not a valid/,
    );
  });

  it('compresses above the threshold and marks the encoding', () => {
    const attrs: Record<string, string> = {};
    const small = new Uint8Array(10);
    expect(compressData(small, attrs, { algorithm: 'gzip', thresholdBytes: 100 })).toBe(small);
    expect(attrs.contentencoding).toBeUndefined();
    const big = new TextEncoder().encode(JSON.stringify({ s: 'x'.repeat(5000) }));
    const packed = compressData(big, attrs, { algorithm: 'br', thresholdBytes: 100 });
    expect(attrs.contentencoding).toBe('br');
    expect(packed.byteLength).toBeLessThan(big.byteLength);
  });

  describe('decoder', () => {
    const decoder = createEnvelopeDecoder({ catalog, maxBytes: 4096 });
    const good = incoming();

    it('validates with the catalog', async () => {
      const event = await decoder.decode(good.attributes, good.data);
      expect(Shipped.is(event)).toBe(true);
      expect(event.payload).toEqual({ orderId: 'o1', items: 2 });
    });

    const cases: Array<[string, Record<string, string>, Uint8Array, string]> = [
      ['no specversion', { ...good.attributes, specversion: '' }, good.data, 'CQRS_ENVELOPE'],
      ['wrong specversion', { ...good.attributes, specversion: '0.3' }, good.data, 'CQRS_ENVELOPE'],
      ['no id', { ...good.attributes, id: '' }, good.data, 'CQRS_ENVELOPE'],
      ['no source', { ...good.attributes, source: '' }, good.data, 'CQRS_ENVELOPE'],
      ['unknown type', { ...good.attributes, type: 'shop.nope' }, good.data, 'CQRS_UNKNOWN_MESSAGE_TYPE'],
      ['invalid payload', good.attributes, new TextEncoder().encode('{"orderId":""}'), 'CQRS_VALIDATION'],
      ['bad JSON', good.attributes, new TextEncoder().encode('{oops'), 'CQRS_ENVELOPE'],
      ['bad UTF-8', good.attributes, new Uint8Array([0xff, 0xfe, 0x7b]), 'CQRS_ENVELOPE'],
      ['oversized', good.attributes, new Uint8Array(5000), 'CQRS_ENVELOPE'],
      [
        'unknown content type',
        { ...good.attributes, datacontenttype: 'text/xml' },
        good.data,
        'CQRS_ENVELOPE',
      ],
      ['unknown encoding', { ...good.attributes, contentencoding: 'zstd' }, good.data, 'CQRS_ENVELOPE'],
      ['corrupt gzip', { ...good.attributes, contentencoding: 'gzip' }, good.data, 'CQRS_ENVELOPE'],
      [
        'gzip bomb',
        { ...good.attributes, contentencoding: 'gzip' },
        new Uint8Array(gzipSync(new Uint8Array(10_000_000))),
        'CQRS_ENVELOPE',
      ],
      ['bad cqrsattributes', { ...good.attributes, cqrsattributes: '{' }, good.data, 'CQRS_ENVELOPE'],
    ];
    for (const [name, attributes, data, code] of cases) {
      it(`rejects ${name} with ${code}`, async () => {
        const error = await decoder.decode(attributes, data).then(
          () => undefined,
          (e: unknown) => e,
        );
        expect(isCqrsError(error, code as never)).toBe(true);
      });
    }
  });
});

describe('message processor', () => {
  it('dispatches through the mediator inside the producer context and acks', async () => {
    const seen: unknown[] = [];
    const mediator = createMediator({
      behaviors: [validation()],
      handlers: [
        on(Shipped, (event) => {
          const ctx = currentContext();
          seen.push({
            corr: ctx?.correlationId,
            current: ctx?.requestId,
            tp: ctx?.traceparent,
            id: event.metadata.requestId,
            next: Shipped.create({ orderId: 'o2', items: 1 }).metadata.causationId,
          });
        }),
      ],
    });
    const event = runWithContext({ correlationId: 'c-42', traceparent: TRACE }, () =>
      Shipped.create({ orderId: 'o1', items: 1 }),
    );
    const processor = createMessageProcessor({ name: 'shipping', mediator, catalog });
    expect(await processor.process(incoming(event))).toEqual({ action: 'ack', outcome: 'handled' });
    expect(seen).toEqual([
      {
        corr: 'c-42',
        current: event.metadata.requestId,
        tp: TRACE,
        id: event.metadata.requestId,
        next: event.metadata.requestId,
      },
    ]);
  });

  it('retries with backoff until maxAttempts, then dead-letters with the reason', async () => {
    const seen: Disposition[] = [];
    const processor = createMessageProcessor({
      name: 'flaky',
      maxAttempts: 3,
      backoff: { initialMs: 100, maxMs: 1000, jitter: 'none' },
      handle() {
        throw new Error('db down');
      },
      onDisposition(d) {
        seen.push(d);
        throw new Error('observer failures are ignored');
      },
    });
    const first = await processor.process(incoming());
    expect(first).toMatchObject({ action: 'retry', delayMs: 100 });
    expect(await processor.process(incoming(undefined, { deliveryAttempt: 2 }))).toMatchObject({
      action: 'retry',
      delayMs: 200,
    });
    const last = await processor.process(incoming(undefined, { deliveryAttempt: 3 }));
    expect(last.action).toBe('dead-letter');
    expect(last.action === 'dead-letter' && last.reason).toMatch(/failed 3 times: Error: db down/);
    expect(seen).toHaveLength(3);
  });

  it('dead-letters undecodable messages at once, and non-retryable errors', async () => {
    let calls = 0;
    const processor = createMessageProcessor({
      name: 'strict',
      catalog,
      isRetryable: (e) => !(e instanceof TypeError),
      handle() {
        calls++;
        throw new TypeError('bug');
      },
    });
    const bad = await processor.process(incoming(undefined, { data: new TextEncoder().encode('nope') }));
    expect(bad).toMatchObject({ action: 'dead-letter' });
    expect(bad.action === 'dead-letter' && bad.reason).toMatch(/^undecodable: EnvelopeError/);
    expect(calls).toBe(0);
    const bug = await processor.process(incoming());
    expect(bug.action === 'dead-letter' && bug.reason).toMatch(/^not retryable: TypeError: bug/);
  });

  it('acks duplicates reported by the inbox guard without running the handler', async () => {
    const done = new Set<string>();
    let runs = 0;
    const processor = createMessageProcessor({
      name: 'dedupe',
      inbox: {
        async once(id, consumer, work) {
          const k = `${consumer}/${id}`;
          if (done.has(k)) return false;
          await work('tx');
          done.add(k);
          return true;
        },
      },
      handle() {
        runs++;
      },
    });
    const m = incoming();
    expect(await processor.process(m)).toEqual({ action: 'ack', outcome: 'handled' });
    expect(await processor.process({ ...m, deliveryAttempt: 2 })).toEqual({
      action: 'ack',
      outcome: 'duplicate',
    });
    expect(runs).toBe(1);
  });

  it('rejects bad options with configuration errors', () => {
    const handle = () => {};
    expect(() => createMessageProcessor({ name: '', handle })).toThrow(/name/);
    expect(() => createMessageProcessor({ name: 'x'.repeat(201), handle })).toThrow(/name/);
    expect(() => createMessageProcessor({ name: 'n' })).toThrow(/mediator or a handle/);
    expect(() => createMessageProcessor({ name: 'n', handle, maxAttempts: 0 })).toThrow(/maxAttempts/);
  });
});

describe('keyed limiter', () => {
  it('bounds concurrency and keeps same-key tasks in order, also after a failure', async () => {
    const limiter = createKeyedLimiter(3);
    let active = 0;
    let peak = 0;
    const perKey = new Map<string, number>();
    let keyOverlap = false;
    const order: string[] = [];
    // Earlier tasks of a key take longer, so without per-key serialization they would finish out of order.
    const task = (key: string, n: number, ms: number, fail = false) =>
      limiter.run(key, async () => {
        active++;
        peak = Math.max(peak, active);
        perKey.set(key, (perKey.get(key) ?? 0) + 1);
        if ((perKey.get(key) ?? 0) > 1) keyOverlap = true;
        // tasks of different lengths (the subject): order and overlap per key
        await new Promise((r) => setTimeout(r, ms));
        order.push(`${key}${n}`);
        perKey.set(key, (perKey.get(key) ?? 0) - 1);
        active--;
        if (fail) throw new Error('x');
      });
    const all = [
      task('a', 1, 30, true),
      task('a', 2, 5),
      task('b', 1, 20),
      task('a', 3, 1),
      task('c', 1, 1),
      task('b', 2, 1),
      task('d', 1, 1),
    ];
    expect(limiter.size).toBe(7);
    const settled = await Promise.allSettled(all);
    expect(settled[0]?.status).toBe('rejected');
    expect(peak).toBe(3);
    expect(keyOverlap).toBe(false);
    const of = (k: string) => order.filter((o) => o.startsWith(k));
    expect(of('a')).toEqual(['a1', 'a2', 'a3']);
    expect(of('b')).toEqual(['b1', 'b2']);
    expect(limiter.size).toBe(0);
  });

  it('runs different keys in parallel and signals backpressure', async () => {
    const limiter = createKeyedLimiter(4);
    const gates: Array<() => void> = [];
    const started: string[] = [];
    for (const k of ['a', 'b', null, undefined]) {
      void limiter.run(k, () => {
        started.push(String(k));
        return new Promise<void>((r) => gates.push(r));
      });
    }
    await waitFor(() => started.length === 4, 5000, 'four tasks started');
    let below = false;
    const waiting = limiter.whenBelow(3).then(() => {
      below = true;
    });
    gates.shift()?.();
    // Waiters are settled in the order they asked, when a task ends: once "below 4" is through, a wrong
    // "below 3" would have been settled too.
    await limiter.whenBelow(4);
    expect(below).toBe(false);
    gates.shift()?.();
    await waiting;
    expect(below).toBe(true);
    const drained = limiter.drain();
    for (const g of gates) g();
    await drained;
    expect(limiter.size).toBe(0);
    expect(() => createKeyedLimiter(0)).toThrow(/concurrency/);
  });
});

describe('in-memory broker', () => {
  const message = (id: string) => {
    const event = Shipped.create({ orderId: id, items: 1 });
    return {
      id: event.metadata.requestId,
      type: event.type,
      topic: 'shop',
      key: id,
      headers: eventAttributes(event, 'svc', 'application/json', id),
      body: jsonPayloadSerializer.serialize(event),
      attempts: 0,
    };
  };

  it('without subscribers acts as a sink, still honouring injected failures and key order', async () => {
    const broker = createInMemoryBroker();
    expect(await broker.publish([message('a'), message('b')])).toEqual([{ ok: true }, { ok: true }]);
    expect(broker.delivered).toBe(2);
    broker.failWhen((m) => m.key === 'a');
    const a1 = message('a');
    const results = await broker.publish([a1, { ...message('a'), id: 'second' }, message('b')]);
    expect(results.map((r) => r.ok)).toEqual([false, false, true]);
    expect(broker.delivered).toBe(3);
  });

  it('rebuilds the event for subscribers and keeps recent deliveries', async () => {
    const broker = createInMemoryBroker({ keepRecent: 1 });
    const got: unknown[] = [];
    broker.subscribe('shop', (m) => {
      got.push(m.event.payload);
    });
    await broker.publish([message('a'), message('b')]);
    expect(got).toEqual([
      { orderId: 'a', items: 1 },
      { orderId: 'b', items: 1 },
    ]);
    expect(broker.recent().map((m) => (m.event.payload as { orderId: string }).orderId)).toEqual(['b']);
  });
});
