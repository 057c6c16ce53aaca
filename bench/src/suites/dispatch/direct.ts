/** `direct`: the floor, an awaited direct call of the same async handler function the mediator cases use. */
import type { AsyncOpCase } from '../../lib/types.ts';
import { PAYLOAD, Ping, pingHandler } from './ping.ts';

export async function setup(_variant: string): Promise<AsyncOpCase> {
  // The message is created once, outside the measured loop (as in every case, for every library).
  const command = Ping.create({ ...PAYLOAD });
  return { op: () => pingHandler(command) };
}
