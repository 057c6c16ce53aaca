import type { SagaLogEntry, SagaRecord } from '@cqrs-ts/core/spi';
import { defineSaga, SagaCorruptedError, sagaContext } from '@cqrs-ts/saga';
import { describe, expect, it } from 'vitest';
import { replaySagaLog } from '../src/saga-replay.ts';

const C = sagaContext<{ n: number }>();
const saga = defineSaga({
  name: 'replayed',
  context: C,
  steps: [
    C.step({ id: 'reserve', act: () => ({ r: 1 }), compensate: () => {} }),
    C.step({
      id: 'charge',
      act: () => ({ p: 'card' }),
      compensate: () => {},
      fallback: { id: 'invoice', act: () => ({ p: 'invoice' }), compensate: () => {} },
    }),
    C.step({ id: 'ship', act: () => 3 }),
  ],
});

const record = (over: Partial<SagaRecord> = {}): SagaRecord =>
  Object.freeze({
    id: 'saga-1',
    name: 'replayed',
    definitionVersion: 1,
    status: 'running',
    context: '{"n":1}',
    cursor: 0,
    version: 3,
    attempts: 2,
    error: null,
    leaseOwner: 'w1',
    leaseUntil: 100,
    deadlineAt: null,
    createdAt: 0,
    updatedAt: 0,
    ...over,
  });

let seq = 0;
const row = (
  stepId: string,
  slot: number,
  over: Partial<Omit<SagaLogEntry, 'seq' | 'sagaId' | 'stepId' | 'slot'>> = {},
): SagaLogEntry =>
  Object.freeze({
    seq: ++seq,
    sagaId: 'saga-1',
    stepId,
    slot,
    action: 'act',
    status: 'completed',
    attempts: 1,
    result: null,
    error: null,
    startedAt: 0,
    at: 0,
    ...over,
  });

const corrupted = (rec: SagaRecord, log: SagaLogEntry[], message: RegExp) => {
  let thrown: unknown;
  try {
    replaySagaLog(saga, rec, log);
  } catch (error) {
    thrown = error;
  }
  expect(thrown).toBeInstanceOf(SagaCorruptedError);
  expect((thrown as SagaCorruptedError).sagaId).toBe('saga-1');
  expect((thrown as Error).message).toMatch(message);
};

describe('replaySagaLog', () => {
  it('a new saga with an empty log goes forward from the first step with its parsed context', () => {
    const state = replaySagaLog(saga, record(), []);
    expect(state).toEqual({
      status: 'running',
      context: { n: 1 },
      cursor: 0,
      completed: [],
      compensated: new Set(),
      failedStep: undefined,
      error: undefined,
      compensatingSince: undefined,
    });
  });

  it('completed acts become completed slots with their parsed results; a fallback maps to its own step', () => {
    const log = [
      row('reserve', 0, { result: '{"r":1}' }),
      row('charge', 1, { status: 'failed', error: '{"message":"card down"}' }),
      row('invoice', 1, { result: '{"p":"invoice"}' }),
    ];
    const state = replaySagaLog(saga, record({ cursor: 2, context: '{"n":2}' }), log);
    expect(state.status).toBe('running');
    expect(state.cursor).toBe(2);
    expect(state.context).toEqual({ n: 2 });
    expect(state.completed.map((c) => [c?.step.id, c?.result])).toEqual([
      ['reserve', { r: 1 }],
      ['invoice', { p: 'invoice' }],
    ]);
    expect(state.completed[1]!.step).toBe(saga.steps[1]!.fallback);
    // A null result (a step that returned nothing) stays undefined.
    const bare = replaySagaLog(saga, record({ cursor: 1 }), [row('reserve', 0)]);
    expect(bare.completed[0]).toEqual({ step: saga.steps[0], result: undefined });
  });

  it('a compensating saga knows which steps are compensated and which act failed', () => {
    const log = [
      row('reserve', 0, { result: '{"r":1}' }),
      row('charge', 1, { result: '{"p":"card"}' }),
      row('ship', 2, { status: 'failed', error: '{"name":"Error","message":"no address"}' }),
      row('charge', 1, { action: 'compensate', startedAt: 500 }),
      row('reserve', 0, {
        action: 'compensate',
        status: 'failed',
        error: '{"message":"later"}',
        startedAt: 900,
      }),
    ];
    const error = '{"name":"TimeoutError","message":"no address","code":"CQRS_TIMEOUT"}';
    const state = replaySagaLog(saga, record({ cursor: 2, status: 'compensating', error }), log);
    expect(state.status).toBe('compensating');
    expect([...state.compensated]).toEqual([1]);
    expect(state.failedStep).toBe('ship');
    // The compensation budget runs from the first compensation attempt.
    expect(state.compensatingSince).toBe(500);
    // A failed fallback names its primary step.
    const fell = replaySagaLog(saga, record({ cursor: 1, status: 'compensating' }), [
      row('reserve', 0),
      row('charge', 1, { status: 'failed' }),
      row('invoice', 1, { status: 'failed' }),
    ]);
    expect(fell.failedStep).toBe('charge');
    expect(state.error).toBeInstanceOf(Error);
    expect(state.error).toMatchObject({ name: 'TimeoutError', message: 'no address', code: 'CQRS_TIMEOUT' });
  });

  it.each([
    ['running', 'running'],
    ['paused', 'running'],
    ['compensating', 'compensating'],
    ['compensation_failed', 'compensating'],
    ['completed', 'completed'],
    ['compensated', 'compensated'],
    ['failed', 'failed'],
  ] as const)('a stored %s saga continues as %s', (stored, expected) => {
    expect(replaySagaLog(saga, record({ status: stored }), []).status).toBe(expected);
  });

  it('reads an error that is not JSON as its message', () => {
    const state = replaySagaLog(saga, record({ error: 'plain text' }), []);
    expect(state.error).toMatchObject({ name: 'Error', message: 'plain text', code: undefined });
  });

  it('changes nothing it is given and gives the same state for the same input', () => {
    const rec = record({ cursor: 1 });
    const log = Object.freeze([row('reserve', 0, { result: '{"r":1}' })]);
    const a = replaySagaLog(saga, rec, log);
    const b = replaySagaLog(saga, rec, log);
    expect(a).toEqual(b);
    expect(a.completed[0]!.result).not.toBe(b.completed[0]!.result);
    expect(rec.cursor).toBe(1);
  });

  describe('refuses what it cannot interpret with a SagaCorruptedError', () => {
    it('a context that is not JSON', () =>
      corrupted(record({ context: '{oops' }), [], /context is not valid JSON/));
    it('a slot out of range or not an integer', () => {
      corrupted(record(), [row('reserve', 7)], /names slot 7/);
      corrupted(record(), [row('reserve', 0.5)], /names slot 0.5/);
      corrupted(record(), [row('reserve', -1)], /names slot -1/);
      corrupted(record(), [row('reserve', '0' as never)], /names slot 0/);
    });
    it('a step id unknown at its slot (also a fallback at another slot)', () => {
      corrupted(record(), [row('zzz', 0)], /unknown step "zzz"/);
      corrupted(record(), [row('invoice', 0)], /unknown step "invoice"/);
    });
    it('an unknown row status or action', () => {
      corrupted(record(), [row('reserve', 0, { status: 'maybe' as never })], /has status "maybe"/);
      corrupted(record(), [row('reserve', 0, { action: 'jump' as never })], /has action "jump"/);
    });
    it('a step completed twice, also once by its fallback', () => {
      corrupted(record({ cursor: 1 }), [row('reserve', 0), row('reserve', 0)], /completed twice/);
      corrupted(record({ cursor: 2 }), [row('reserve', 0), row('charge', 1), row('invoice', 1)], /twice/);
    });
    it('a compensation of a step that did not complete (or of the primary when its fallback ran)', () => {
      corrupted(record(), [row('reserve', 0, { action: 'compensate' })], /which did not complete/);
      corrupted(
        record({ cursor: 2 }),
        [row('reserve', 0), row('invoice', 1), row('charge', 1, { action: 'compensate' })],
        /compensation of "charge"/,
      );
    });
    it('a result that is not JSON', () => {
      corrupted(record({ cursor: 1 }), [row('reserve', 0, { result: '{x' })], /result is not valid JSON/);
    });
    it('completed steps that are not a prefix, or disagree with the cursor', () => {
      corrupted(record({ cursor: 1 }), [row('charge', 1)], /cursor 1 disagrees with 1 completed/);
      corrupted(record({ cursor: 2 }), [row('reserve', 0)], /cursor 2 disagrees with 1 completed/);
      corrupted(record({ cursor: 0 }), [row('reserve', 0)], /cursor 0 disagrees/);
      corrupted(
        record({ cursor: 1 }),
        [row('reserve', 0), row('ship', 2)],
        /cursor 1 disagrees with 2 completed/,
      );
    });
    it('an unknown saga status', () => {
      corrupted(record({ status: 'sleeping' as never }), [], /unknown status "sleeping"/);
    });
  });
});
