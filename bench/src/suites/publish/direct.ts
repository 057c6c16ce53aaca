/**
 * The floors: the three async handler functions the cqrs-ts cases register, called and awaited in turn. `direct`
 * passes one event created before the loop (to compare with `cqrs-ts publish`); `direct create and publish`
 * creates it in each operation, with `new`.
 */
import type { PingedEvent, PublishCase } from './events.ts';
import { calls, h1, h2, h3, PAYLOAD, Pinged, PlainPinged } from './events.ts';

export async function setup(variant: string): Promise<PublishCase> {
  switch (variant) {
    case 'direct': {
      const event = Pinged.create({ ...PAYLOAD });
      return {
        op: async () => {
          await h1(event);
          await h2(event);
          await h3(event);
        },
        calls,
      };
    }
    case 'create-and-publish':
      return {
        op: async () => {
          // The handlers only read the payload: a plain event serves them as well.
          const event = new PlainPinged({ n: 1 }) as unknown as PingedEvent;
          await h1(event);
          await h2(event);
          await h3(event);
        },
        calls,
      };
    default:
      throw new Error(`unknown direct variant ${variant}`);
  }
}
