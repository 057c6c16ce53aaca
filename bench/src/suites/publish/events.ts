/**
 * The event and the three handlers shared by the `direct` and cqrs-ts publish cases. Every library's handler has
 * the same body, an async function that increments its own counter; the event carries the payload `{ n: 1 }`.
 */
import type { AnyEventDefinition, HandlerBinding, InferMessage } from '@cqrs-ts/core';
import { defineEvent, on } from '@cqrs-ts/core';
import type { AsyncOpCase } from '../../lib/types.ts';

export const Pinged = defineEvent('bench.pinged').withPayload<{ n: number }>();
export type PingedEvent = InferMessage<typeof Pinged>;

/** The payload of every published event (a new object per operation: `{ n: 1 }`). */
export const PAYLOAD = { n: 1 } as const;

/** The event of the `direct create and publish` case: a plain class, created with `new`, as in @nestjs/cqrs. */
export class PlainPinged {
  readonly payload: { readonly n: number };
  constructor(payload: { readonly n: number }) {
    this.payload = payload;
  }
}

/** Calls of the three handlers of `Pinged`, and of the handlers of the 100 other event types. */
const counts = { h1: 0, h2: 0, h3: 0, others: 0 };

export const h1 = async (_event: PingedEvent): Promise<void> => {
  counts.h1++;
};
export const h2 = async (_event: PingedEvent): Promise<void> => {
  counts.h2++;
};
export const h3 = async (_event: PingedEvent): Promise<void> => {
  counts.h3++;
};

/** 100 other event types, each with one handler (same body), for the `100 types` cases. */
export function otherHandlers(count: number): HandlerBinding[] {
  const bindings: HandlerBinding[] = [];
  for (let i = 0; i < count; i++) {
    const Other: AnyEventDefinition = defineEvent(`bench.other-${i}`).withPayload<{ n: number }>();
    bindings.push(
      on(Other, async () => {
        counts.others++;
      }),
    );
  }
  return bindings;
}

/** What a publish case module's `setup(variant)` resolves to: the operation and the handler call counts. */
export interface PublishCase extends AsyncOpCase {
  /** Calls of each of the three handlers so far, and of every other handler, e.g. `[1, 1, 1, 0]`. */
  readonly calls: () => readonly number[];
}

export const calls = (): readonly number[] => [counts.h1, counts.h2, counts.h3, counts.others];

/**
 * The sanity check of the publish suite: after the first publish (awaited, then one macrotask later so that
 * fire-and-forget buses have run their handlers), each of the three handlers ran exactly once and no other.
 */
export function checkCalls(counted: readonly number[]): string | undefined {
  return counted.length === 4 && counted[0] === 1 && counted[1] === 1 && counted[2] === 1 && counted[3] === 0
    ? undefined
    : `expected each of the 3 handlers to run once and no other handler, got calls ${JSON.stringify(counted)}`;
}
