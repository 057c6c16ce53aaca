import { createInMemorySagaStore } from '@cqrs-ts/core';
import {
  CircuitOpenError,
  createCircuitBreaker,
  createRedisCircuitStateStore,
  createSagaRunner,
  defineSaga,
  sagaContext,
} from '@cqrs-ts/saga';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { service, uniqueSuffix, waitFor } from '../../core/test/support/services.ts';

const REDIS_URL = process.env.CQRS_REDIS_URL ?? 'redis://127.0.0.1:6379';
const clients: Redis[] = [];
const client = () => {
  const c = new Redis(REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 1, connectTimeout: 2000 });
  c.on('error', () => {});
  clients.push(c);
  return c;
};
const available = await service('redis', async () => {
  const c = client();
  await c.connect();
  await c.ping();
});
afterAll(async () => {
  await Promise.all(clients.map((c) => c.quit().catch(() => {})));
});

describe.skipIf(!available)('redis circuit state store', () => {
  const prefix = `cqrs-test:${uniqueSuffix}:`;

  it('stores the open mark with an expiry and clears it', async () => {
    const redis = client();
    const store = createRedisCircuitStateStore({ client: redis, prefix });
    expect(await store.openUntil('k1')).toBeUndefined();
    const until = Date.now() + 5000;
    await store.open('k1', until);
    expect(await store.openUntil('k1')).toBe(until);
    const ttl = await redis.pttl(`${prefix}k1`);
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(5000);
    await store.close('k1');
    expect(await store.openUntil('k1')).toBeUndefined();
    await store.open('k2', Date.now() + 30);
    // Redis expires the key itself (PX): wait for that, not for a guessed delay.
    await waitFor(async () => (await store.openUntil('k2')) === undefined, 5000, 'k2 to expire');
    await redis.set(`${prefix}k3`, 'garbage');
    expect(await store.openUntil('k3')).toBeUndefined();
  });

  it('two processes (two clients, two breakers) see one open circuit; a saga falls back without calling the primary', async () => {
    const breakerA = createCircuitBreaker({
      failMax: 2,
      resetTimeoutMs: 60_000,
      store: createRedisCircuitStateStore({ client: client(), prefix }),
    });
    const breakerB = createCircuitBreaker({
      failMax: 2,
      resetTimeoutMs: 60_000,
      store: createRedisCircuitStateStore({ client: client(), prefix }),
    });
    const fail = () => Promise.reject(new Error('psp down'));
    await breakerA.call('psp', fail).catch(() => {});
    await breakerA.call('psp', fail).catch(() => {});
    // The open mark is written asynchronously on the state change.
    const deadline = Date.now() + 2000;
    let seen: unknown;
    while (Date.now() < deadline) {
      seen = await breakerB.call('psp', async () => 'called').catch((e: unknown) => e);
      if (seen instanceof CircuitOpenError) break;
      await new Promise((r) => setTimeout(r, 10));
    }
    expect(seen).toBeInstanceOf(CircuitOpenError);

    const C = sagaContext<{ id: string }>();
    const primary: string[] = [];
    const saga = defineSaga({
      name: 'pay',
      context: C,
      steps: [
        C.step({
          id: 'charge',
          circuitBreaker: { key: 'psp' },
          act: (c) => {
            primary.push(c.id);
            return 'charged';
          },
          fallback: { id: 'charge-later', act: () => 'queued' },
        }),
      ],
    });
    const runner = createSagaRunner({ store: createInMemorySagaStore(), breaker: breakerB });
    const out = await runner.run(saga, { id: 'o1' });
    expect(out.results.charge).toBe('queued');
    expect(primary).toEqual([]);
  });
});
