/**
 * @nestjs/cqrs cases. Plain JavaScript: Node's type stripping cannot run decorators, so they are applied as the
 * plain function calls they compile to, e.g. `EventsHandler(PingedEvent)(Pinged1Handler)`.
 *
 * The EventBus is fire-and-forget: `publish(event)` pushes the event into an RxJS Subject and returns `undefined`;
 * every registered handler is a subscription that filters the events by id and calls `handle(event)`
 * synchronously, but the promise the handler returns is not awaited by `publish`. The case measures
 * `await eventBus.publish(event)`, i.e. the handlers are started, not awaited.
 */
import 'reflect-metadata';
import { Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { CqrsModule, EventBus, EventsHandler } from '@nestjs/cqrs';

const counts = { h1: 0, h2: 0, h3: 0, others: 0 };
const calls = () => [counts.h1, counts.h2, counts.h3, counts.others];

class PingedEvent {
  constructor(payload) {
    this.payload = payload;
  }
}

class Pinged1Handler {
  async handle(_event) {
    counts.h1++;
  }
}
class Pinged2Handler {
  async handle(_event) {
    counts.h2++;
  }
}
class Pinged3Handler {
  async handle(_event) {
    counts.h3++;
  }
}
EventsHandler(PingedEvent)(Pinged1Handler);
EventsHandler(PingedEvent)(Pinged2Handler);
EventsHandler(PingedEvent)(Pinged3Handler);
const HANDLERS = [Pinged1Handler, Pinged2Handler, Pinged3Handler];

/** 100 other event classes, each with its own handler class (same body). */
function otherHandlers(count) {
  const handlers = [];
  for (let i = 0; i < count; i++) {
    const OtherEvent = class {
      constructor(payload) {
        this.payload = payload;
      }
    };
    Object.defineProperty(OtherEvent, 'name', { value: `Other${i}Event` });
    const OtherHandler = class {
      async handle(_event) {
        counts.others++;
      }
    };
    Object.defineProperty(OtherHandler, 'name', { value: `Other${i}Handler` });
    EventsHandler(OtherEvent)(OtherHandler);
    handlers.push(OtherHandler);
  }
  return handlers;
}

async function publishCase(providers) {
  class AppModule {}
  Module({ imports: [CqrsModule.forRoot()], providers })(AppModule);
  const app = await NestFactory.createApplicationContext(AppModule, { logger: false });
  const bus = app.get(EventBus);
  // The event is created in each operation (as in every case, for every library). `publish` returns
  // `undefined`, so the loop's `await op()` is exactly `await eventBus.publish(new PingedEvent(payload))`.
  return { op: () => bus.publish(new PingedEvent({ n: 1 })), calls, close: () => app.close() };
}

export async function setup(variant) {
  switch (variant) {
    case 'create-and-publish':
      return publishCase(HANDLERS);
    case 'publish-100-types':
      return publishCase([...otherHandlers(100), ...HANDLERS]);
    default:
      throw new Error(`unknown nestjs variant ${variant}`);
  }
}
