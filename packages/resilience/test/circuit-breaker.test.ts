import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  CircuitOpenError,
  ConfigurationError,
  createMediator,
  defineCommand,
  defineEvent,
  handle,
  on,
  retry,
  TimeoutError,
  timeout,
  UnenforcedPolicyError,
  ValidationError,
} from '@cqrs-ts/core';
import { type CircuitStatus, circuitBreaker } from '@cqrs-ts/resilience';
import { describe, expect, it } from 'vitest';

const Charge = defineCommand('pay.charge')
  .withPayload<{ fail?: 'down' | 'invalid' | 'hang' }>()
  .returns<string>();
const Refund = defineCommand('pay.refund').withPayload<{ fail?: 'down' }>().returns<string>();
const Ship = defineCommand('ship.label').withPayload<{ fail?: 'down' }>().returns<string>();

function service(calls: string[]) {
  const run = (name: string, fail?: string) => {
    calls.push(name);
    if (fail === 'down') return Promise.reject(new Error(`${name}: 503`));
    if (fail === 'invalid')
      return Promise.reject(new ValidationError(name, [{ path: [], message: 'bad', code: 'x' }]));
    if (fail === 'hang') return new Promise<string>(() => {});
    return Promise.resolve(`${name} ok`);
  };
  return [
    handle(Charge, (c) => run('charge', c.payload.fail), { circuit: 'payments-api', timeout: 20 }),
    handle(Refund, (c) => run('refund', c.payload.fail), { circuit: 'payments-api' }),
    handle(Ship, (c) => run('ship', c.payload.fail), { circuit: true }),
  ];
}

/** Waits until the circuit lets a trial call through (the time it announced), not a fixed delay. */
async function untilRetry(status: CircuitStatus): Promise<void> {
  expect(status.retryAt).toBeTypeOf('number');
  await new Promise((r) => setTimeout(r, Math.max(0, status.retryAt! - Date.now()) + 1));
}

describe('circuitBreaker behavior', () => {
  it('opens a shared circuit after consecutive failures and answers at once, saying when to retry', async () => {
    const calls: string[] = [];
    const changes: string[] = [];
    const breaker = circuitBreaker({
      opensAfter: { consecutiveFailures: 2 },
      halfOpenAfterMs: 60_000,
      onStateChange: (s) => changes.push(`${s.circuit}:${s.state}`),
    });
    const mediator = createMediator({ handlers: service(calls), behaviors: [breaker, timeout()] });
    await expect(mediator.send(Charge.create({ fail: 'down' }))).rejects.toThrow('charge: 503');
    expect(breaker.status('payments-api')).toMatchObject({ state: 'closed', retryAt: undefined });
    await expect(mediator.send(Refund.create({ fail: 'down' }))).rejects.toThrow('refund: 503');
    const open = breaker.status('payments-api');
    expect(open).toMatchObject({ circuit: 'payments-api', state: 'open' });
    expect(open.lastFailure).toMatchObject({ message: 'refund: 503' });
    expect(open.retryAt! - Date.now()).toBeGreaterThan(59_000);

    const before = calls.length;
    const refused = await mediator.send(Charge.create({})).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(CircuitOpenError);
    expect(refused).toMatchObject({
      code: 'CQRS_CIRCUIT_OPEN',
      circuit: 'payments-api',
      retryAt: open.retryAt,
    });
    expect((refused as CircuitOpenError).retryAfterMs).toBeGreaterThan(59_000);
    expect((refused as Error).message).toMatch(
      /circuit "payments-api" is open: retry after \d{4}-\d\d-\d\dT.*Z \(in \d+ ms\)/,
    );
    await expect(mediator.send(Refund.create({}))).rejects.toBeInstanceOf(CircuitOpenError);
    expect(calls.length).toBe(before); // refused without calling the dependency
    expect(JSON.parse(JSON.stringify(refused))).toMatchObject({
      code: 'CQRS_CIRCUIT_OPEN',
      retryAt: open.retryAt,
    });

    // `circuit: true` is the handler's own circuit: untouched.
    expect(await mediator.send(Ship.create({}))).toBe('ship ok');
    expect(breaker.status('ship.label:ship.label handler').state).toBe('closed');
    expect(changes).toEqual(['payments-api:open']);
    expect(breaker.statuses().map((s) => [s.circuit, s.state])).toEqual([
      ['payments-api', 'open'],
      ['ship.label:ship.label handler', 'closed'],
    ]);
  });

  it('lets one trial through when the time comes: success closes, failure opens again', async () => {
    const calls: string[] = [];
    const changes: string[] = [];
    const breaker = circuitBreaker({
      opensAfter: { consecutiveFailures: 1 },
      halfOpenAfterMs: 30,
      onStateChange: (s) => changes.push(s.state),
    });
    const mediator = createMediator({ handlers: service(calls), behaviors: [breaker, timeout()] });
    await expect(mediator.send(Refund.create({ fail: 'down' }))).rejects.toThrow('503');
    const first = breaker.status('payments-api');
    await untilRetry(first);
    await expect(mediator.send(Refund.create({ fail: 'down' }))).rejects.toThrow('503'); // the trial fails
    const second = breaker.status('payments-api');
    expect(second.state).toBe('open');
    expect(second.retryAt!).toBeGreaterThan(first.retryAt!);
    await expect(mediator.send(Refund.create({}))).rejects.toBeInstanceOf(CircuitOpenError);
    await untilRetry(second);
    expect(await mediator.send(Refund.create({}))).toBe('refund ok');
    expect(breaker.status('payments-api')).toMatchObject({ state: 'closed', retryAt: undefined });
    expect(changes).toEqual(['open', 'half-open', 'open', 'half-open', 'closed']);
  });

  it('counts timeouts as failures but not the caller’s mistakes (the shared retryability rule)', async () => {
    const calls: string[] = [];
    const breaker = circuitBreaker({ opensAfter: { consecutiveFailures: 2 } });
    const mediator = createMediator({ handlers: service(calls), behaviors: [breaker, timeout()] });
    for (let i = 0; i < 5; i++) {
      await expect(mediator.send(Charge.create({ fail: 'invalid' }))).rejects.toBeInstanceOf(ValidationError);
    }
    expect(breaker.status('payments-api').state).toBe('closed');
    await expect(mediator.send(Charge.create({ fail: 'hang' }))).rejects.toBeInstanceOf(TimeoutError);
    await expect(mediator.send(Charge.create({ fail: 'hang' }))).rejects.toBeInstanceOf(TimeoutError);
    expect(breaker.status('payments-api').state).toBe('open');
    const custom = circuitBreaker({
      opensAfter: { consecutiveFailures: 1 },
      isFailure: (e) => e instanceof ValidationError,
    });
    const strict = createMediator({ handlers: service([]), behaviors: [custom, timeout()] });
    await expect(strict.send(Charge.create({ fail: 'invalid' }))).rejects.toBeInstanceOf(ValidationError);
    expect(custom.status('payments-api').state).toBe('open');
  });

  it('opens on a failure ratio over the last calls, with settings per circuit', async () => {
    const breaker = circuitBreaker({
      opensAfter: { consecutiveFailures: 100 },
      circuits: { 'payments-api': { opensAfter: { failureRatio: 0.4, window: 4 } } },
    });
    const mediator = createMediator({ handlers: service([]), behaviors: [breaker, timeout()] });
    for (const payload of [{}, { fail: 'down' as const }, {}])
      await mediator.send(Refund.create(payload)).catch(() => {});
    expect(breaker.status('payments-api').state).toBe('closed'); // 3 calls: fewer than the window
    await mediator.send(Refund.create({ fail: 'down' })).catch(() => {});
    expect(breaker.status('payments-api').state).toBe('open'); // 2 failures in 4 calls: 0.5 > 0.4
  });

  it('holds a circuit open by hand until released', async () => {
    const breaker = circuitBreaker();
    const mediator = createMediator({ handlers: service([]), behaviors: [breaker, timeout()] });
    {
      using _maintenance = breaker.isolate('payments-api');
      const error = await mediator.send(Refund.create({})).catch((e: unknown) => e);
      expect(error).toMatchObject({ code: 'CQRS_CIRCUIT_OPEN', retryAt: undefined, retryAfterMs: undefined });
      expect((error as Error).message).toBe('circuit "payments-api" is held open: retry once it is released');
      expect(breaker.status('payments-api').state).toBe('isolated');
    }
    expect(await mediator.send(Refund.create({}))).toBe('refund ok');
  });

  it('is what a mediator needs for handlers that declare a circuit, also for event handlers', async () => {
    const Paid = defineEvent('pay.paid');
    let runs = 0;
    const handlers = [
      on(
        Paid,
        () => {
          runs++;
          throw new Error('ledger down');
        },
        { circuit: 'ledger' },
      ),
    ];
    expect(() => createMediator({ handlers })).toThrow(UnenforcedPolicyError);
    const breaker = circuitBreaker({ opensAfter: { consecutiveFailures: 1 } });
    const mediator = createMediator({ handlers, behaviors: [retry(), breaker], onError: () => {} });
    await mediator.publish(Paid.create({})).catch(() => {});
    const error = await mediator.publish(Paid.create({})).catch((e: unknown) => e);
    expect((error as { errors: unknown[] }).errors[0]).toBeInstanceOf(CircuitOpenError);
    expect(runs).toBe(1);
    expect(mediator.describe()[0]!.behaviors).toEqual(['circuitBreaker']);
  });

  it('refuses malformed options with what to pass instead', () => {
    const bad: [unknown, RegExp][] = [
      [{ halfOpenAfterMs: 0 }, /halfOpenAfterMs must be a number of ms from 1/],
      [{ halfOpenAfterMs: Number.NaN }, /halfOpenAfterMs/],
      [{ opensAfter: { consecutiveFailures: 0 } }, /consecutiveFailures must be an integer from 1 to 10000/],
      [{ opensAfter: { failureRatio: 2, window: 10 } }, /failureRatio must be a number between 0 and 1/],
      [{ opensAfter: { failureRatio: 1, window: 10 } }, /failureRatio/],
      [{ opensAfter: { failureRatio: 0.5, window: 0 } }, /window must be an integer/],
      [
        { opensAfter: { failureRatio: 0.5, window: 4, minimumCalls: 9 } },
        /minimumCalls must be an integer from 1 to window/,
      ],
      [{ opensAfter: 'often' }, /opensAfter must be/],
      [{ circuits: { 'bad name': {} } }, /circuit name "bad name"/],
      [{ circuits: { ok: { halfOpenAfterMs: -1 } } }, /circuits\.ok: halfOpenAfterMs/],
      [{ isFailure: 'always' }, /isFailure must be a function/],
      [{ onStateChange: 1 }, /onStateChange must be a function/],
      [null, /options object/],
    ];
    for (const [options, message] of bad) {
      expect(() => circuitBreaker(options as never)).toThrow(ConfigurationError);
      expect(() => circuitBreaker(options as never)).toThrow(message);
    }
  });

  it('keeps cockatiel out of core, which recognizes the behavior by the policy it declares', () => {
    const core = fileURLToPath(new URL('../../core/', import.meta.url));
    const pkg = JSON.parse(readFileSync(join(core, 'package.json'), 'utf8')) as Record<string, unknown>;
    expect(pkg.dependencies).toBeUndefined();
    const sources = readdirSync(join(core, 'src'), { recursive: true, encoding: 'utf8' }).filter((f) =>
      f.endsWith('.ts'),
    );
    expect(sources.length).toBeGreaterThan(20);
    for (const file of sources)
      expect(readFileSync(join(core, 'src', file), 'utf8')).not.toMatch(/from ['"]cockatiel/);
    expect(circuitBreaker().enforces).toEqual(['circuit']);
  });
});
