/**
 * cqrs-ts cases: `mediator.publish(event)` of an event with three handlers. `publish` and `publish-sequential`
 * publish one event created before the loop (to isolate the mediator); the other cases create the event in each
 * operation (`Pinged.create({ n: 1 })`), as applications do.
 */
import type { Mediator, PublishOptions } from '@cqrs-ts/core';
import { createMediator, on } from '@cqrs-ts/core';
import type { PublishCase } from './events.ts';
import { calls, h1, h2, h3, otherHandlers, PAYLOAD, Pinged } from './events.ts';

const SEQUENTIAL: PublishOptions = { strategy: 'sequential' };

function preCreated(mediator: Mediator, options?: PublishOptions): PublishCase {
  const event = Pinged.create({ ...PAYLOAD });
  const op = options === undefined ? () => mediator.publish(event) : () => mediator.publish(event, options);
  return { op, calls };
}

export async function setup(variant: string): Promise<PublishCase> {
  const handlers = [on(Pinged, h1), on(Pinged, h2), on(Pinged, h3)];
  switch (variant) {
    case 'publish':
      return preCreated(createMediator({ handlers }));
    case 'publish-sequential':
      return preCreated(createMediator({ handlers }), SEQUENTIAL);
    case 'create-and-publish': {
      const mediator = createMediator({ handlers });
      return { op: () => mediator.publish(Pinged.create({ n: 1 })), calls };
    }
    case 'publish-100-types': {
      const mediator = createMediator({ handlers: [...otherHandlers(100), ...handlers] });
      return { op: () => mediator.publish(Pinged.create({ n: 1 })), calls };
    }
    default:
      throw new Error(`unknown cqrs-ts variant ${variant}`);
  }
}
