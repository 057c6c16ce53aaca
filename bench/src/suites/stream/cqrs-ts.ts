/** `cqrs-ts stream`: `mediator.stream(query)` of a `handleStream` async generator, consumed with `for await`. */
import { createMediator, handleStream } from '@cqrs-ts/core';
import type { AsyncOpCase } from '../../lib/types.ts';
import { Count, countHandler, N } from './count.ts';

export async function setup(variant: string): Promise<AsyncOpCase> {
  if (variant !== 'stream') throw new Error(`unknown cqrs-ts variant ${variant}`);
  const mediator = createMediator({ handlers: [handleStream(Count, countHandler)] });
  // The query is created once, outside the measured loop (as in every case).
  const query = Count.create({ n: N });
  return {
    op: async () => {
      let items = 0;
      for await (const _ of mediator.stream(query)) items++;
      return items;
    },
  };
}
