import { ConfigurationError, createMediator, timeout } from '@cqrs-ts/core';
import { describe, expect, it } from 'vitest';
import {
  CountGreetings,
  CountGreetingsHandler,
  created,
  Greet,
  GreetHandler,
  NotDecorated,
} from './fixtures/handlers.decorated.ts';

describe('TC39 standard decorators', () => {
  it('registers decorated classes and creates one instance per dispatch', async () => {
    const mediator = createMediator({
      handlers: [GreetHandler, CountGreetingsHandler],
      behaviors: [timeout()],
    });
    created.length = 0;
    expect(await mediator.send(Greet.create({ name: 'Ada' }))).toBe('hello Ada');
    expect(await mediator.send(Greet.create({ name: 'Bob' }))).toBe('hello Bob');
    expect(await mediator.query(CountGreetings.create({}))).toBe(2);
    expect(mediator.describe().find((h) => h.messageType === 'fixtures.greet')).toMatchObject({
      handler: 'GreetHandler',
      tags: ['greeting'],
    });
  });

  it('rejects an undecorated class with a clear error', () => {
    expect(() => createMediator({ handlers: [NotDecorated] })).toThrow(ConfigurationError);
    expect(() => createMediator({ handlers: [NotDecorated] })).toThrow(/not decorated with @handles/);
  });
});
