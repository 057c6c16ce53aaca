/**
 * cqrs-ts cases: `send` / `query` through `createMediator`, bare, with one no-op behavior, with the standard
 * pipeline, and with 100 other message types registered.
 */
import type { BehaviorInput, HandlerBinding, Mediator, Middleware } from '@cqrs-ts/core';
import {
  authorization,
  correlation,
  createMediator,
  defineCommand,
  handle,
  logging,
  noopLogger,
  validation,
} from '@cqrs-ts/core';
import { z } from 'zod';
import type { AsyncOpCase } from '../../lib/types.ts';
import type { PingResult } from './ping.ts';
import { PAYLOAD, Ping, PingQuery, pingHandler, pingQueryHandler } from './ping.ts';

/** The no-op behavior: a plain middleware that calls the rest of the pipeline. */
const noop: Middleware = (message, context, next) => next(message, context);

function otherHandlers(count: number): HandlerBinding[] {
  const bindings: HandlerBinding[] = [];
  for (let i = 0; i < count; i++) {
    const Other = defineCommand(`bench.other-${i}`).withPayload<{ n: number }>().returns<PingResult>();
    bindings.push(handle(Other, async (command) => ({ ok: true, n: command.payload.n })));
  }
  return bindings;
}

function sendCase(mediator: Mediator): AsyncOpCase {
  // The message is created once, outside the measured loop (as in every case, for every library).
  const command = Ping.create({ ...PAYLOAD });
  return { op: () => mediator.send(command) };
}

export async function setup(variant: string): Promise<AsyncOpCase> {
  switch (variant) {
    case 'send-bare':
      return sendCase(createMediator({ handlers: [handle(Ping, pingHandler)] }));
    case 'send-1-behavior':
      return sendCase(createMediator({ handlers: [handle(Ping, pingHandler)], behaviors: [noop] }));
    case 'send-bare-100-types':
      return sendCase(createMediator({ handlers: [...otherHandlers(100), handle(Ping, pingHandler)] }));
    case 'send-pipeline': {
      // Same handler body, but the command has a small zod schema so the validation behavior has work to do.
      const Validated = defineCommand('bench.ping', {
        schema: z.object({ n: z.number().int() }),
      }).returns<PingResult>();
      const behaviors: BehaviorInput[] = [
        correlation(),
        validation(),
        authorization({ policies: [() => true] }),
        logging({ logger: noopLogger }),
      ];
      const mediator = createMediator({
        handlers: [handle(Validated, async (command) => ({ ok: true, n: command.payload.n }))],
        behaviors,
      });
      const command = Validated.create({ ...PAYLOAD });
      return { op: () => mediator.send(command) };
    }
    case 'query-bare': {
      const mediator = createMediator({ handlers: [handle(PingQuery, pingQueryHandler)] });
      const query = PingQuery.create({ ...PAYLOAD });
      return { op: () => mediator.query(query) };
    }
    default:
      throw new Error(`unknown cqrs-ts variant ${variant}`);
  }
}
