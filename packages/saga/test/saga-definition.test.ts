import { createInMemorySagaStore } from '@cqrs-ts/core';
import {
  CircuitOpenError,
  createCircuitBreaker,
  createSagaRunner,
  defineSaga,
  SagaDefinitionError,
  sagaClassDiagram,
  sagaContext,
  sagaLogSequenceDiagram,
  sagaSequenceDiagram,
  toJson,
} from '@cqrs-ts/saga';
import { describe, expect, it } from 'vitest';

type Ctx = { orderId: string };
const C = sagaContext<Ctx>();
const act = () => 1;

const bad =
  (steps: unknown[], extra: Record<string, unknown> = {}) =>
  () =>
    defineSaga({ name: 'bad', context: C, steps: steps as never, ...extra });

describe('defineSaga validation', () => {
  it.each([
    [
      'duplicate step ids',
      bad([
        { id: 'a', act },
        { id: 'a', act },
      ]),
      /duplicate step id "a"/,
    ],
    [
      'a fallback id that repeats a step id',
      bad([
        { id: 'a', act },
        { id: 'b', act, fallback: { id: 'a', act } },
      ]),
      /duplicate/,
    ],
    [
      'a nested fallback',
      bad([{ id: 'a', act, fallback: { id: 'b', act, fallback: { id: 'c', act } } }]),
      /own fallback/,
    ],
    [
      'a breaker on the fallback',
      bad([{ id: 'a', act, fallback: { id: 'b', act, circuitBreaker: true } }]),
      /guards the primary/,
    ],
    ['no steps', bad([]), /non-empty/],
    ['an id with spaces', bad([{ id: 'a b', act }]), /id must match/],
    ['a missing act', bad([{ id: 'a' }]), /act must be a function/],
    [
      'both use and act',
      bad([
        {
          id: 'a',
          act,
          use: class {
            act() {}
          },
        },
      ]),
      /either use or act/,
    ],
    ['a class without act', bad([{ id: 'a', use: class {} }]), /has no act/],
    ['a bad retry', bad([{ id: 'a', act, retry: { maxAttempts: 0 } }]), /maxAttempts/],
    ['a bad timeout', bad([{ id: 'a', act, timeoutMs: -1 }]), /timeoutMs/],
    ['a bad deadline', bad([{ id: 'a', act }], { deadlineMs: 0 }), /deadlineMs/],
    ['a bad version', bad([{ id: 'a', act }], { version: 1.5 }), /version/],
    ['a non-schema context', bad([{ id: 'a', act }], { context: 5 }), /context must be/],
  ])('refuses %s', (_what, make, message) => {
    expect(make).toThrow(SagaDefinitionError);
    expect(make).toThrow(message);
  });

  it('refuses two definitions with one name in a runner', () => {
    const a = defineSaga({ name: 'same', context: C, steps: [{ id: 'a', act }] });
    const b = defineSaga({ name: 'same', context: C, steps: [{ id: 'a', act }] });
    expect(() => createSagaRunner({ store: createInMemorySagaStore(), sagas: [a, b] })).toThrow(
      SagaDefinitionError,
    );
  });

  it('refuses outbox: true over a store without an outbox', () => {
    expect(() => createSagaRunner({ store: createInMemorySagaStore(), outbox: true })).toThrow(/outbox/);
  });

  it('toJson keeps plain data and refuses what JSON would change', () => {
    expect(toJson({ a: [1, 'x', null, { b: true }], c: undefined })).toBe('{"a":[1,"x",null,{"b":true}]}');
    expect(() => toJson({ a: Symbol('s') })).toThrow(/symbol/);
    expect(() => toJson({ a: Number.POSITIVE_INFINITY })).toThrow(/Infinity/);
  });
});

describe('saga diagrams', () => {
  const saga = defineSaga({
    name: 'place-order',
    context: C,
    deadlineMs: 60_000,
    steps: [
      C.step({ id: 'reserve', act, compensate: () => {} }),
      C.step({
        id: 'charge',
        act,
        retry: { maxAttempts: 3 },
        circuitBreaker: true,
        compensate: () => {},
        fallback: { id: 'charge-invoice', act, compensate: () => {} },
      }),
    ],
  });

  it('draws the sequence with fallbacks and reverse compensations', () => {
    const text = sagaSequenceDiagram(saga);
    expect(text).toBe(`sequenceDiagram
  participant C as Caller
  participant R as place-order
  participant S1 as reserve
  participant S2 as charge
  participant F2 as charge-invoice (fallback)
  C->>R: start(context)
  Note over R: deadline 60000 ms, then compensate
  R->>S1: act
  alt reserve succeeds
    S1-->>R: result (recorded)
  else reserve fails
    Note over R: nothing to compensate
    R-->>C: SagaFailedError (compensated or compensation_failed)
  end
  Note over R,S2: circuit place-order/charge
  R->>S2: act (3 attempts)
  alt charge succeeds
    S2-->>R: result (recorded)
  else charge fails or circuit open
    R->>F2: act
    alt charge-invoice succeeds
      F2-->>R: result (recorded)
    else charge-invoice fails
      R->>S1: compensate
      R-->>C: SagaFailedError (compensated or compensation_failed)
    end
  end
  R-->>C: completed (context, results)
`);
  });

  it('draws the class diagram with steps, order and fallbacks', () => {
    const text = sagaClassDiagram(saga);
    expect(text).toContain('class Saga["place-order"] {');
    expect(text).toContain('class S2["charge"] {\n    <<step>>\n    +act()\n    +compensate()\n    +retry 3');
    expect(text).toContain('S1 --> S2 : then');
    expect(text).toContain('S2 ..> F2 : fallback');
    expect(text).toContain('Saga *-- S2 : step 2');
  });

  it('draws what an instance did from its log', async () => {
    const runner = createSagaRunner({ store: createInMemorySagaStore(), breaker: createCircuitBreaker() });
    const failing = defineSaga({
      name: 'f',
      context: C,
      steps: [
        C.step({ id: 'a', act, compensate: () => {} }),
        C.step({
          id: 'b',
          act: () => Promise.reject(new Error('x')),
          fallback: { id: 'b2', act: () => Promise.reject(new Error('y')) },
        }),
      ],
    });
    const err = (await runner.run(failing, { orderId: '1' }).catch((e) => e)) as { sagaId: string };
    const text = sagaLogSequenceDiagram(failing, await runner.history(err.sagaId));
    expect(text.split('\n').slice(5)).toEqual([
      '  R->>S1: act',
      '  S1-->>R: completed',
      '  R->>S2: act',
      '  S2-->>R: failed (error logged)',
      '  R->>F2: act',
      '  F2-->>R: failed (error logged)',
      '  R->>S1: compensate',
      '  S1-->>R: completed',
      '',
    ]);
  });
});

describe('circuit breaker', () => {
  it('opens after failMax consecutive failures: the threshold call throws its own error, later ones the open error', async () => {
    const changes: string[] = [];
    const breaker = createCircuitBreaker({
      failMax: 2,
      resetTimeoutMs: 30,
      onStateChange: (k, s) => changes.push(`${k}:${s}`),
    });
    const fail = () => Promise.reject(new Error('down'));
    await expect(breaker.call('k', fail)).rejects.toThrow('down');
    await expect(breaker.call('k', fail)).rejects.toThrow('down');
    const open = await breaker.call('k', fail).catch((e: unknown) => e);
    expect(open).toBeInstanceOf(CircuitOpenError);
    expect(breaker.isOpenError(open)).toBe(true);
    expect((open as CircuitOpenError).code).toBe('CQRS_CIRCUIT_OPEN');
    expect(await breaker.call('other', async () => 'ok')).toBe('ok');
    // The reset timeout is the subject: cockatiel lets a trial through once 30 ms of wall time have passed
    // (this breaker takes no clock for it and announces no retry time), so the test lets them pass.
    await new Promise((r) => setTimeout(r, 40));
    expect(await breaker.call('k', async () => 'probe ok')).toBe('probe ok');
    expect(breaker.status('k')).toBe('closed');
    expect(changes).toEqual(['k:open', 'k:half-open', 'k:closed']);
  });

  it('excluded errors do not count', async () => {
    const breaker = createCircuitBreaker({
      failMax: 1,
      exclude: (e) => (e as Error).message === 'bad input',
    });
    await expect(breaker.call('k', () => Promise.reject(new Error('bad input')))).rejects.toThrow(
      'bad input',
    );
    expect(breaker.status('k')).toBe('closed');
  });
});
