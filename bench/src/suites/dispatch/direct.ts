/**
 * The floors: awaited direct calls of the handler functions, with nothing between the caller and the handler.
 * `direct` passes one message created before the loop (to compare with `cqrs-ts send bare`); the other cases
 * create it in each operation, with `new`, as applications do. Two floors do by hand what cqrs-ts does for every
 * dispatch: `direct in AsyncLocalStorage.run` gives the handler an ambient context the idiomatic way, and `direct
 * create with metadata and call` gives the message a random UUID and an ISO timestamp.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { randomUUID } from 'node:crypto';
import type { AsyncOpCase } from '../../lib/types.ts';
import {
  PAYLOAD,
  Ping,
  PlainPing,
  pingHandler,
  plainHandler,
  ROUND_ROBIN,
  roundRobinHandlers,
} from './ping.ts';

/** `PlainPing` with hand-made tracing metadata (its own class, so the `PlainPing` floors keep their shape). */
class TracedPing {
  readonly payload: { readonly n: number };
  readonly requestId: string;
  readonly correlationId: string;
  readonly requestedAt: string;
  constructor(
    payload: { readonly n: number },
    requestId: string,
    correlationId: string,
    requestedAt: string,
  ) {
    this.payload = payload;
    this.requestId = requestId;
    this.correlationId = correlationId;
    this.requestedAt = requestedAt;
  }
}

export async function setup(variant: string): Promise<AsyncOpCase> {
  switch (variant) {
    case 'direct': {
      const command = Ping.create({ ...PAYLOAD });
      return { op: () => pingHandler(command) };
    }
    case 'direct-async-context': {
      // What a hand-written service does to give a handler an ambient context: AsyncLocalStorage.run per call.
      const storage = new AsyncLocalStorage<{ readonly correlationId: string; readonly requestId: string }>();
      const command = Ping.create({ ...PAYLOAD });
      const store = {
        correlationId: command.metadata.correlationId,
        requestId: command.metadata.requestId,
      };
      return { op: () => storage.run(store, pingHandler, command) };
    }
    case 'create-with-metadata-and-call':
      // A plain class with hand-made tracing metadata: a random UUID and an ISO timestamp, as a service without a
      // toolkit writes it.
      return {
        op: () => {
          const requestId = randomUUID();
          return plainHandler(new TracedPing({ n: 1 }, requestId, requestId, new Date().toISOString()));
        },
      };
    case 'create-and-call':
      return { op: () => plainHandler(new PlainPing({ n: 1 })) };
    case 'round-robin': {
      let next = 0;
      return {
        op: () => {
          const handler = roundRobinHandlers[next]!;
          next = next === ROUND_ROBIN - 1 ? 0 : next + 1;
          return handler(new PlainPing({ n: 1 }));
        },
      };
    }
    default:
      throw new Error(`unknown direct variant ${variant}`);
  }
}
