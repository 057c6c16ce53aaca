/**
 * The floors: awaited direct calls of the handler functions, with nothing between the caller and the handler.
 * `direct` passes one message created before the loop (to compare with `cqrs-ts send bare`); the other cases
 * create it in each operation, with `new`, as applications do.
 */
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

export async function setup(variant: string): Promise<AsyncOpCase> {
  switch (variant) {
    case 'direct': {
      const command = Ping.create({ ...PAYLOAD });
      return { op: () => pingHandler(command) };
    }
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
