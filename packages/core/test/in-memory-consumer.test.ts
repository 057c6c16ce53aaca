import { createInMemoryBroker, createInMemoryConsumer, defineEvent, isCqrsError } from '@cqrs-ts/core';
import { createOutboxEncoder, toOutboxMessages } from '@cqrs-ts/core/spi';
import { waitFor } from '@cqrs-ts/testing';
import { describe, expect, it } from 'vitest';

const errorOf = (fn: () => unknown) => {
  try {
    fn();
  } catch (error) {
    return error;
  }
  return undefined;
};

describe('in-memory consumer', () => {
  it('refuses a missing broker, no topics, no handler and bad limits with a ConfigurationError', () => {
    const broker = createInMemoryBroker();
    const handle = () => {};
    for (const options of [
      { broker: undefined, topics: ['t'], handle },
      { broker, topics: [], handle },
      { broker, topics: [''], handle },
      { broker, topics: ['t'] },
      { broker, topics: ['t'], handle, concurrency: 0 },
      { broker, topics: ['t'], handle, stopTimeoutMs: -1 },
      { broker, topics: ['t'], handle, maxAttempts: 0 },
      { broker, topics: ['t'], handle, pause: { probeIntervalMs: 0 } },
      { broker, topics: ['t'], handle, pause: { probeIntervalMs: 500, maxProbeIntervalMs: 100 } },
      { broker, topics: ['t'], handle, pause: { isUnavailable: 'yes' } },
      { broker, topics: ['t'], handle, pause: 'on' },
    ]) {
      const error = errorOf(() => createInMemoryConsumer(options as never));
      expect(isCqrsError(error, 'CQRS_CONFIGURATION'), JSON.stringify(Object.keys(options))).toBe(true);
    }
  });

  it('leaves a malformed message to the consumer instead of failing the publish', async () => {
    const broker = createInMemoryBroker();
    const consumer = createInMemoryConsumer({ broker, topics: ['t'], handle() {} });
    const results = await broker.publish([
      {
        id: 'm-1',
        type: 'raw',
        topic: 't',
        key: null,
        headers: {},
        body: new Uint8Array([0xff]),
        attempts: 0,
      },
    ]);
    expect(results).toEqual([{ ok: true }]);
    await consumer.start();
    await waitFor(() => consumer.deadLetters().length === 1, 5000, 'the dead letter');
    expect(consumer.deadLetters().map((d) => d.reason.startsWith('undecodable:'))).toEqual([true]);
    await consumer[Symbol.asyncDispose]();
  });

  it('a stop while paused gives the held messages back untouched; a consumer with pause: false spends attempts instead', async () => {
    const broker = createInMemoryBroker();
    const Ticked = defineEvent('imc.ticked', { topic: 't', key: () => 'k' }).withPayload<{ n: number }>();
    const down = () => Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' });
    let dependencyUp = false;
    const seen: number[] = [];
    const held = createInMemoryConsumer({
      broker,
      topics: ['t'],
      handle: async (e) => {
        if (!dependencyUp) throw down();
        seen.push((e.payload as { n: number }).n);
      },
    });
    const plain = createInMemoryConsumer({
      broker,
      topics: ['t'],
      pause: false,
      maxAttempts: 2,
      backoff: { initialMs: 1, maxMs: 1 },
      handle: () => Promise.reject(down()),
    });
    const encoder = createOutboxEncoder({ source: 'test' });
    await broker.publish(
      toOutboxMessages(encoder.encode([Ticked.create({ n: 1 }), Ticked.create({ n: 2 })], 0)),
    );
    await held.start();
    await plain.start();
    await waitFor(() => held.health().paused, 5000, 'the pause');
    await waitFor(() => plain.deadLetters().length === 2, 5000, 'the dead letters without pausing');
    expect(plain.health()).toMatchObject({ paused: false, pauses: 0 });
    await held.stop();
    expect(held.health()).toMatchObject({ paused: true, retried: 0, deadLettered: 0, handled: 0 });
    expect(held.backlog).toBe(2);
    // started again with the dependency back: both, in their order, on their first attempt
    dependencyUp = true;
    await held.start();
    await waitFor(() => seen.length === 2, 5000, 'the held messages after the restart');
    expect(seen).toEqual([1, 2]);
    expect(held.health()).toMatchObject({ paused: false, handled: 2, retried: 0, deadLettered: 0 });
    await held[Symbol.asyncDispose]();
    await plain[Symbol.asyncDispose]();
  });
});
