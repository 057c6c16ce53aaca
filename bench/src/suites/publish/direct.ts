/** `direct`: the floor, the three async handler functions the cqrs-ts cases register, called and awaited in turn. */
import type { PublishCase } from './events.ts';
import { calls, h1, h2, h3, PAYLOAD, Pinged } from './events.ts';

export async function setup(_variant: string): Promise<PublishCase> {
  // The event is created once, outside the measured loop (as in every case, for every library).
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
