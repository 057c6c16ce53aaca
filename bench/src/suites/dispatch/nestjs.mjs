/**
 * @nestjs/cqrs cases. Plain JavaScript: Node's type stripping cannot run decorators, so the decorators are
 * applied as the plain function calls they compile to, e.g. `CommandHandler(PingCommand)(PingHandler)`.
 *
 * Every variant builds a standalone application context (`NestFactory.createApplicationContext`) and takes
 * the CommandBus / QueryBus from it. Handlers are default-scoped (singletons), the fast path of the buses.
 */
import 'reflect-metadata';
import { Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { Command, CommandBus, CommandHandler, CqrsModule, Query, QueryBus, QueryHandler } from '@nestjs/cqrs';

class PingCommand extends Command {
  constructor(payload) {
    super();
    this.payload = payload;
  }
}

class PingHandler {
  async execute(command) {
    return { ok: true, n: command.payload.n };
  }
}
CommandHandler(PingCommand)(PingHandler);

class PingQuery extends Query {
  constructor(payload) {
    super();
    this.payload = payload;
  }
}

class PingQueryHandler {
  async execute(query) {
    return { ok: true, n: query.payload.n };
  }
}
QueryHandler(PingQuery)(PingQueryHandler);

/** 100 other command types, each with its own handler class (same body). */
function otherHandlers(count) {
  const handlers = [];
  for (let i = 0; i < count; i++) {
    const OtherCommand = class extends Command {
      constructor(payload) {
        super();
        this.payload = payload;
      }
    };
    Object.defineProperty(OtherCommand, 'name', { value: `Other${i}Command` });
    const OtherHandler = class {
      async execute(command) {
        return { ok: true, n: command.payload.n };
      }
    };
    Object.defineProperty(OtherHandler, 'name', { value: `Other${i}Handler` });
    CommandHandler(OtherCommand)(OtherHandler);
    handlers.push(OtherHandler);
  }
  return handlers;
}

/** The no-op behavior, same shape as the cqrs-ts one: `(message, context, next) => next(message, context)`. */
const noop = (command, context, next) => next(command, context);

/**
 * The nearest @nestjs/cqrs equivalent of one pipeline behavior. @nestjs/cqrs has no pipeline: Nest interceptors,
 * guards and pipes wrap controller (HTTP/RPC/WebSocket) handlers, not `CommandBus.execute`, and the
 * `commandPublisher` option only observes each command (it can neither wrap nor short-circuit the handler).
 * So the bus is subclassed: `execute` runs the middleware around `super.execute`. The subclass replaces the stock
 * CommandBus inside CqrsModule (a provider override in the `forRoot()` dynamic module), so CqrsModule registers
 * the handlers on it and everything that injects CommandBus gets it. `next` is bound once, as cqrs-ts composes
 * its pipeline once, so a dispatch allocates no closure for it.
 */
class BehaviorCommandBus extends CommandBus {
  #next = (command, context) => super.execute(command, context);

  execute(command, context) {
    return noop(command, context, this.#next);
  }
}

async function createContext(providers, { behavior = false } = {}) {
  const cqrs = CqrsModule.forRoot();
  if (behavior) cqrs.providers.push({ provide: CommandBus, useClass: BehaviorCommandBus });
  class AppModule {}
  Module({ imports: [cqrs], providers })(AppModule);
  return NestFactory.createApplicationContext(AppModule, { logger: false });
}

function sendCase(app, expectedBus) {
  const bus = app.get(CommandBus);
  if (expectedBus !== undefined && !(bus instanceof expectedBus)) {
    throw new Error(`expected a ${expectedBus.name}, got a ${bus.constructor.name}`);
  }
  // The command is created in each operation, as applications do (as in every case, for every library).
  return { op: () => bus.execute(new PingCommand({ n: 1 })), close: () => app.close() };
}

export async function setup(variant) {
  switch (variant) {
    case 'create-and-send':
      return sendCase(await createContext([PingHandler]));
    case 'send-1-behavior':
      return sendCase(await createContext([PingHandler], { behavior: true }), BehaviorCommandBus);
    case 'send-100-types':
      return sendCase(await createContext([...otherHandlers(100), PingHandler]));
    case 'query': {
      const app = await createContext([PingQueryHandler]);
      const bus = app.get(QueryBus);
      return { op: () => bus.execute(new PingQuery({ n: 1 })), close: () => app.close() };
    }
    default:
      throw new Error(`unknown nestjs variant ${variant}`);
  }
}
