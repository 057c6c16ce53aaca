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

/** The payload sent by every case. */
export const PAYLOAD = { n: 1 } as const;

/** `check` of the dispatch suite: every case must resolve to the handler's result. */
export function checkPing(result: unknown): string | undefined {
  const r = result as Partial<PingResult> | undefined;
  return r?.ok === true && r.n === 1
    ? undefined
    : `expected { ok: true, n: 1 }, got ${JSON.stringify(result)}`;
}
