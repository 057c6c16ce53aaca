/**
 * The streaming query and the generator shared by the stream cases: `bench.count` yields the integers
 * `0 .. n - 1`; every case consumes a stream of `N` items with `for await` and resolves to the number of items.
 */
import type { InferMessage } from '@cqrs-ts/core';
import { defineStreamQuery } from '@cqrs-ts/core';

/** Items per stream; metrics are reported per item. */
export const N = 1000;

export const Count = defineStreamQuery('bench.count').withPayload<{ n: number }>().yields<number>();
export type CountQuery = InferMessage<typeof Count>;

/** The handler of `Count`; the `generator` case iterates this very function. */
export async function* countHandler(query: CountQuery): AsyncGenerator<number, void, undefined> {
  for (let i = 0; i < query.payload.n; i++) yield i;
}

/** `check` of the stream suite: every stream must have yielded `N` items. */
export function checkCount(result: unknown): string | undefined {
  return result === N ? undefined : `expected ${N} items, got ${JSON.stringify(result)}`;
}
