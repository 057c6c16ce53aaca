/**
 * cqrs-ts cases: `mediator.publish(event)` of an event with three handlers, with the default strategy (parallel)
 * or `{ strategy: 'sequential' }`, and with 100 other event types registered.
 */
import type { Mediator, PublishOptions } from '@cqrs-ts/core';
import { createMediator, on } from '@cqrs-ts/core';
import type { PublishCase } from './events.ts';
import { calls, h1, h2, h3, otherHandlers, PAYLOAD, Pinged } from './events.ts';

const SEQUENTIAL: PublishOptions = { strategy: 'sequential' };

function publishCase(mediator: Mediator, options?: PublishOptions): PublishCase {
  // The event (and the options object) are created once, outside the measured loop.
  const event = Pinged.create({ ...PAYLOAD });
  const op = options === undefined ? () => mediator.publish(event) : () => mediator.publish(event, options);
  return { op, calls };
}

export async function setup(variant: string): Promise<PublishCase> {
  const handlers = [on(Pinged, h1), on(Pinged, h2), on(Pinged, h3)];
  switch (variant) {
    case 'publish':
      return publishCase(createMediator({ handlers }));
    case 'publish-sequential':
      return publishCase(createMediator({ handlers }), SEQUENTIAL);
    case 'publish-100-types':
      return publishCase(createMediator({ handlers: [...otherHandlers(100), ...handlers] }));
    default:
      throw new Error(`unknown cqrs-ts variant ${variant}`);
  }
}
