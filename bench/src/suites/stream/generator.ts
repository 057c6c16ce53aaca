/** `generator`: the floor, a bare async generator (the very function cqrs-ts registers) consumed with `for await`. */
import type { AsyncOpCase } from '../../lib/types.ts';
import { Count, countHandler, N } from './count.ts';

export async function setup(_variant: string): Promise<AsyncOpCase> {
  // The query is created once, outside the measured loop, as in the cqrs-ts case.
  const query = Count.create({ n: N });
  return {
    op: async () => {
      let items = 0;
      for await (const _ of countHandler(query)) items++;
      return items;
    },
  };
}
