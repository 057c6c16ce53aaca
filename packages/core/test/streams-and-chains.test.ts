import {
  CancelledError,
  createMediator,
  currentContext,
  defineBehavior,
  defineCommand,
  defineEvent,
  defineQuery,
  defineStreamQuery,
  EventDispatchError,
  HandlerNotFoundError,
  handle,
  handleChain,
  handleStream,
  NoHandlerAnsweredError,
  on,
  validation,
} from '@cqrs-ts/core';
import { describe, expect, expectTypeOf, it } from 'vitest';
import { z } from 'zod';

const Counted = defineEvent('t.counted').withPayload<{ n: number }>();
const Plain = defineQuery('t.plain').returns<null>();
const Count = defineStreamQuery('t.count', {
  schema: z.object({ to: z.number().int().min(0) }),
}).yields<number>();

describe('streaming queries', () => {
  it('yields typed items and dispatches each item’s events before handing it out', async () => {
    const log: string[] = [];
    const mediator = createMediator({
      behaviors: [validation()],
      handlers: [
        handleStream(Count, async function* (q, ctx) {
          for (let n = 1; n <= q.payload.to; n++) {
            ctx.emit(Counted, { n });
            log.push(`produce ${n}`);
            yield n;
          }
          ctx.emit(Counted, { n: -1 });
        }),
        on(Counted, (e) => {
          log.push(`event ${e.payload.n}`);
        }),
      ],
    });
    const stream = mediator.stream(Count.create({ to: 3 }));
    expectTypeOf(stream).toEqualTypeOf<AsyncIterableIterator<number>>();
    for await (const n of stream) log.push(`consume ${n}`);
    expect(log).toEqual([
      'produce 1',
      'event 1',
      'consume 1',
      'produce 2',
      'event 2',
      'consume 2',
      'produce 3',
      'event 3',
      'consume 3',
      'event -1',
    ]);
  });

  it('cancels and cleans up the handler when the consumer breaks early', async () => {
    let cleaned = false;
    let produced = 0;
    let aborted = false;
    const mediator = createMediator({
      behaviors: [validation()],
      handlers: [
        handleStream(Count, async function* (_q, ctx) {
          ctx.signal.addEventListener('abort', () => {
            aborted = true;
          });
          try {
            for (;;) {
              produced++;
              yield produced;
            }
          } finally {
            cleaned = true;
          }
        }),
      ],
    });
    for await (const n of mediator.stream(Count.create({ to: 0 }))) if (n === 3) break;
    expect(produced).toBe(3);
    expect(cleaned).toBe(true);
    expect(aborted).toBe(true);
  });

  it('does not buffer: a slow consumer slows the producer', async () => {
    let produced = 0;
    const mediator = createMediator({
      behaviors: [validation()],
      handlers: [
        handleStream(Count, async function* () {
          for (;;) {
            produced++;
            yield produced;
          }
        }),
      ],
    });
    const it = mediator.stream(Count.create({ to: 0 }));
    await it.next();
    // The producer is synchronous, so a read-ahead could only run on microtasks: once a macrotask has run,
    // every such step would have happened.
    await new Promise((r) => setImmediate(r));
    expect(produced).toBe(1);
    await it.next();
    expect(produced).toBe(2);
    await it.return?.();
  });

  it('stops on the caller’s abort signal with a CancelledError, even while the handler waits', async () => {
    const waiting = Promise.withResolvers<void>();
    const cleaned = Promise.withResolvers<void>();
    const mediator = createMediator({
      behaviors: [validation()],
      handlers: [
        handleStream(Count, async function* (_q, ctx) {
          try {
            yield 1;
            await new Promise((_resolve, reject) => {
              ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason));
              waiting.resolve();
            });
          } finally {
            cleaned.resolve();
          }
        }),
      ],
    });
    const controller = new AbortController();
    const got: number[] = [];
    const run = (async () => {
      for await (const n of mediator.stream(Count.create({ to: 1 }), { signal: controller.signal }))
        got.push(n);
    })();
    await waiting.promise; // the handler is blocked inside a step
    controller.abort();
    await expect(run).rejects.toBeInstanceOf(CancelledError);
    expect(got).toEqual([1]);
    await cleaned.promise; // its cleanup runs (the test times out otherwise)
  });

  it('runs through behaviors (validation), keeps the ambient context while producing, and reports errors typed', async () => {
    const mediator = createMediator({
      behaviors: [validation(), defineBehavior('streams', (m, c, n) => n(m, c), { kinds: ['query'] })],
      handlers: [
        handleStream(Count, async function* (q) {
          // a real await inside the stream (the subject): the context must survive it
          await new Promise((r) => setTimeout(r, 1));
          yield currentContext()?.requestId === q.metadata.requestId ? 1 : 0;
        }),
        handle(Plain, () => null),
      ],
    });
    await expect(mediator.stream(Count.create({ to: -1 })).next()).rejects.toHaveProperty(
      'code',
      'CQRS_VALIDATION',
    );
    const items: number[] = [];
    for await (const n of mediator.stream(Count.create({ to: 1 }))) items.push(n);
    expect(items).toEqual([1]);
    await expect(mediator.stream(defineStreamQuery('t.unknown').create({})).next()).rejects.toBeInstanceOf(
      HandlerNotFoundError,
    );
    await expect(mediator.stream(Plain.create({}) as never).next()).rejects.toHaveProperty(
      'code',
      'CQRS_WRONG_MESSAGE_KIND',
    );
    await expect(mediator.query(Count.create({ to: 1 }) as never)).rejects.toHaveProperty(
      'code',
      'CQRS_WRONG_MESSAGE_KIND',
    );
    expect(mediator.describe().find((h) => h.mode === 'stream')?.behaviors).toEqual([
      'validation',
      'streams',
    ]);
  });

  it('surfaces event failures with the fail policy and a handler that does not return an iterable', async () => {
    const mediator = createMediator({
      events: { failurePolicy: 'fail' },
      onError: () => {},
      behaviors: [validation()],
      handlers: [
        handleStream(Count, async function* (_q, ctx) {
          ctx.emit(Counted, { n: 1 });
          yield 1;
          yield 2;
        }),
        on(Counted, () => {
          throw new Error('projection down');
        }),
      ],
    });
    await expect(mediator.stream(Count.create({ to: 1 })).next()).rejects.toBeInstanceOf(EventDispatchError);
    const broken = createMediator({
      handlers: [handleStream(Count, (() => 42) as never)],
      behaviors: [validation()],
    });
    await expect(broken.stream(Count.create({ to: 1 })).next()).rejects.toThrow(/async iterable/);
    expect(() => handleStream(defineQuery('t.x') as never, async function* () {})).toThrow(
      /defineStreamQuery/,
    );
    expect(() => handle(Count as never, (() => null) as never)).toThrow(/handleStream/);
  });
});

describe('chain of responsibility', () => {
  const Quote = defineQuery('shipping.quote')
    .withPayload<{ country: string; kg: number }>()
    .returns<{ carrier: string; price: number }>();
  const Seen = defineEvent('shipping.link-ran').withPayload<{ link: string }>();

  function build(withFallback: boolean) {
    const ran: string[] = [];
    const events: string[] = [];
    const mediator = createMediator({
      handlers: [
        handleChain(
          Quote,
          [
            function domestic(q, ctx, next) {
              ctx.emit(Seen, { link: 'domestic' });
              return q.payload.country === 'FR' ? { carrier: 'laposte', price: 5 } : next();
            },
            {
              name: 'europe',
              handle(q, ctx, next) {
                ctx.emit(Seen, { link: 'europe' });
                return ['DE', 'IT'].includes(q.payload.country) ? { carrier: 'dhl', price: 12 } : next();
              },
            },
            async function heavy(q, ctx, next) {
              ctx.emit(Seen, { link: 'heavy' });
              return q.payload.kg > 30 ? { carrier: 'freight', price: 99 } : next();
            },
          ],
          withFallback
            ? {
                fallback: function manual() {
                  ran.push('fallback');
                  return { carrier: 'manual', price: 0 };
                },
              }
            : {},
        ),
        on(Seen, (e) => {
          events.push(e.payload.link);
        }),
      ],
    });
    return { mediator, ran, events };
  }

  it('tries links in order until one answers; events from every link that ran are dispatched once', async () => {
    const { mediator, events } = build(false);
    expect(await mediator.query(Quote.create({ country: 'FR', kg: 1 }))).toEqual({
      carrier: 'laposte',
      price: 5,
    });
    expect(events).toEqual(['domestic']);
    events.length = 0;
    expect(await mediator.query(Quote.create({ country: 'US', kg: 40 }))).toEqual({
      carrier: 'freight',
      price: 99,
    });
    expect(events).toEqual(['domestic', 'europe', 'heavy']);
  });

  it('fails with a typed error when no link answers, unless a fallback is bound', async () => {
    const { mediator, events } = build(false);
    const error = await mediator.query(Quote.create({ country: 'US', kg: 1 })).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(NoHandlerAnsweredError);
    expect((error as NoHandlerAnsweredError).links).toEqual(['domestic', 'europe', 'heavy']);
    expect(events).toEqual([]);
    const withFallback = build(true);
    expect(await withFallback.mediator.query(Quote.create({ country: 'US', kg: 1 }))).toEqual({
      carrier: 'manual',
      price: 0,
    });
    expect(withFallback.ran).toEqual(['fallback']);
    expect(withFallback.events).toEqual(['domestic', 'europe', 'heavy']);
  });

  it('describes the chain for diagrams', () => {
    const { mediator } = build(true);
    expect(mediator.describe()[0]!.chain).toEqual({
      messageType: 'shipping.quote',
      links: ['domestic', 'europe', 'heavy'],
      fallback: 'manual',
    });
    expect(() => handleChain(Quote, [42 as never])).toThrow(/link 1/);
    expect(() => handleChain(defineCommand('x.y') as never, [])).not.toThrow();
  });
});
