/**
 * The message and handler body shared by every dispatch case. Every library's handler has this same body,
 * `async (message) => ({ ok: true, n: message.payload.n })`, and is sent the payload `{ n: 1 }`.
 */
import type { InferMessage } from '@cqrs-ts/core';
import { defineCommand, defineQuery } from '@cqrs-ts/core';

export interface PingResult {
  readonly ok: boolean;
  readonly n: number;
}

export const Ping = defineCommand('bench.ping').withPayload<{ n: number }>().returns<PingResult>();
export const PingQuery = defineQuery('bench.ping-query').withPayload<{ n: number }>().returns<PingResult>();

/** The handler of `Ping`; the `direct` case calls this very function. */
export const pingHandler = async (command: InferMessage<typeof Ping>): Promise<PingResult> => ({
  ok: true,
  n: command.payload.n,
});

export const pingQueryHandler = async (query: InferMessage<typeof PingQuery>): Promise<PingResult> => ({
  ok: true,
  n: query.payload.n,
});

/** The payload sent by every case (a new object per operation: `{ n: 1 }`). */
export const PAYLOAD = { n: 1 } as const;

/** The message of the `direct` cases: a plain class, created with `new`, as in @nestjs/cqrs and mediatr-ts. */
export class PlainPing {
  readonly payload: { readonly n: number };
  constructor(payload: { readonly n: number }) {
    this.payload = payload;
  }
}

/** The handler the `direct` cases call: the same body as `pingHandler`, for a plain message. */
export const plainHandler = async (command: PlainPing): Promise<PingResult> => ({
  ok: true,
  n: command.payload.n,
});

/** Types of the round-robin cases. */
export const ROUND_ROBIN = 100;

/**
 * The handlers of the round-robin cases: 100 distinct functions with the body of `pingHandler`, each compiled
 * from its own source (as 100 handlers written in 100 modules are), so a call site that calls them in turn is
 * megamorphic. The `direct` and cqrs-ts round-robin cases call the very same functions.
 */
export const roundRobinHandlers: readonly ((command: {
  readonly payload: { readonly n: number };
}) => Promise<PingResult>)[] = Array.from(
  { length: ROUND_ROBIN },
  (_, i) =>
    new Function(
      'command',
      `return (async function handler${i}() { return { ok: true, n: command.payload.n }; })();`,
    ) as (command: { readonly payload: { readonly n: number } }) => Promise<PingResult>,
);

/** `check` of the dispatch suite: every case must resolve to the handler's result. */
export function checkPing(result: unknown): string | undefined {
  const r = result as Partial<PingResult> | undefined;
  return r?.ok === true && r.n === 1
    ? undefined
    : `expected { ok: true, n: 1 }, got ${JSON.stringify(result)}`;
}
