import {
  type AnyEvent,
  ConfigurationError,
  createInlineProjections,
  createInMemoryProjectionStore,
  defineEvent,
  defineProjection,
  ProcessingError,
} from '@cqrs-ts/core';
import { describe, expect, it } from 'vitest';

const Added = defineEvent('test.apply-batch-added').withPayload<{ id: string }>();

describe('applyBatch', () => {
  it('refuses a batch projection with neither apply nor applyBatch', () => {
    expect(() => defineProjection({ name: 'none', events: [Added] })).toThrow(ConfigurationError);
    expect(() =>
      defineProjection({ name: 'bad', events: [Added], applyBatch: 'no' as unknown as () => void }),
    ).toThrow(ConfigurationError);
  });

  it('hands an inline projection all of a command events in one call, and apply one event per call', async () => {
    const calls: string[][] = [];
    const p = defineProjection<unknown>({
      name: 'many',
      events: [Added],
      applyBatch: (items) => {
        calls.push(items.map((i) => (i.event.payload as { id: string }).id));
      },
    });
    const inline = createInlineProjections({ store: createInMemoryProjectionStore(), projections: [p] });
    const events = ['a', 'b', 'c'].map((id) => Added.create({ id }) as AnyEvent);
    await inline.apply({} as never, events);
    expect(calls).toEqual([['a', 'b', 'c']]);
    await p.apply(
      events[0]!,
      {},
      { projection: 'many', version: 1, position: '1', streamId: null, streamVersion: null },
    );
    expect(calls.at(-1)).toEqual(['a']);
  });

  it('rolls an inline command back when applyBatch throws, naming the batch', async () => {
    const p = defineProjection<unknown>({
      name: 'failing',
      events: [Added],
      applyBatch: () => {
        throw new Error('refused');
      },
    });
    const inline = createInlineProjections({ store: createInMemoryProjectionStore(), projections: [p] });
    const events = ['a', 'b'].map((id) => Added.create({ id }) as AnyEvent);
    const error = await inline.apply({} as never, events).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(ProcessingError);
    expect((error as Error).message).toContain('a batch of 2 events');
  });
});
