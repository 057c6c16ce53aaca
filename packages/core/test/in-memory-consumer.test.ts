import { createInMemoryBroker, createInMemoryConsumer, isCqrsError } from '@cqrs-ts/core';
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
});
