/**
 * cqrs-ts cases. Every case but `send-bare` creates its message in each operation (`Ping.create({ n: 1 })`), as
 * applications do; `send-bare` (and `send-bare-traced`, the same with a tracing subscriber) sends one message
 * created before the loop, to isolate the mediator.
 */
import { tracingChannel } from 'node:diagnostics_channel';
import type { BehaviorInput, HandlerBinding, Middleware } from '@cqrs-ts/core';
import {
  authorization,
  correlation,
  createMediator,
  defineCommand,
  handle,
  logging,
  noopLogger,
  retry,
  TRACING_CHANNELS,
  timeout,
  validation,
} from '@cqrs-ts/core';
import { z } from 'zod';
import type { AsyncOpCase } from '../../lib/types.ts';
import type { PingResult } from './ping.ts';
import {
  PAYLOAD,
  Ping,
  PingQuery,
  pingHandler,
  pingQueryHandler,
  ROUND_ROBIN,
  roundRobinHandlers,
} from './ping.ts';

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

export async function setup(variant: string): Promise<AsyncOpCase> {
  switch (variant) {
    case 'send-bare': {
      const mediator = createMediator({ handlers: [handle(Ping, pingHandler)] });
      const command = Ping.create({ ...PAYLOAD });
      return { op: () => mediator.send(command) };
    }
    case 'send-bare-traced': {
      // The same as `send-bare` with a no-op subscriber on every cqrs-ts:dispatch sub-channel: the cost of listening.
      const noopSubscriber = { start() {}, end() {}, asyncStart() {}, asyncEnd() {}, error() {} };
      tracingChannel(TRACING_CHANNELS.dispatch).subscribe(noopSubscriber);
      const mediator = createMediator({ handlers: [handle(Ping, pingHandler)] });
      const command = Ping.create({ ...PAYLOAD });
      return { op: () => mediator.send(command) };
    }
    case 'create-and-send': {
      const mediator = createMediator({ handlers: [handle(Ping, pingHandler)] });
      return { op: () => mediator.send(Ping.create({ n: 1 })) };
    }
    case 'create-message': {
      // Resolves to a constant: resolving a promise with the message itself would add a `then` lookup on it.
      const result: PingResult = Object.freeze({ ok: true, n: 1 });
      let last: unknown;
      return {
        op: async () => {
          last = Ping.create({ n: 1 });
          return last === undefined ? undefined : result;
        },
      };
    }
    case 'send-1-behavior': {
      const mediator = createMediator({ handlers: [handle(Ping, pingHandler)], behaviors: [noop] });
      return { op: () => mediator.send(Ping.create({ n: 1 })) };
    }
    case 'send-bare-100-types': {
      const mediator = createMediator({ handlers: [...otherHandlers(100), handle(Ping, pingHandler)] });
      return { op: () => mediator.send(Ping.create({ n: 1 })) };
    }
    case 'send-pipeline': {
      // Same handler body, but the command has a small zod schema so the validation behavior has work to do.
      const Validated = defineCommand('bench.ping', {
        schema: z.object({ n: z.number().int() }),
      }).returns<PingResult>();
      const behaviors: BehaviorInput[] = [
        validation(),
        authorization({ policies: [() => true] }),
        logging({ logger: noopLogger }),
      ];
      const mediator = createMediator({
        handlers: [handle(Validated, async (command) => ({ ok: true, n: command.payload.n }))],
        behaviors,
      });
      return { op: () => mediator.send(Validated.create({ n: 1 })) };
    }
    case 'recommended-pipeline': {
      // The recommended pipeline with work for each behavior: a zod schema, an authorize hook, retries and a
      // timeout declared by the handler (a retry and a budget per call, none used up), a logger whose levels are off.
      const Guarded = defineCommand('bench.ping', {
        schema: z.object({ n: z.number().int() }),
        authorize: () => true,
      }).returns<PingResult>();
      const mediator = createMediator({
        behaviors: [
          correlation(),
          logging({ logger: noopLogger }),
          validation(),
          authorization(),
          retry(),
          timeout(),
        ],
        handlers: [
          handle(Guarded, async (command) => ({ ok: true, n: command.payload.n }), {
            timeout: 1_000,
            retries: 2,
          }),
        ],
      });
      return { op: () => mediator.send(Guarded.create({ n: 1 })) };
    }
    case 'round-robin-100': {
      const definitions = roundRobinHandlers.map((_, i) =>
        defineCommand(`bench.round-robin-${i}`).withPayload<{ n: number }>().returns<PingResult>(),
      );
      const mediator = createMediator({
        handlers: definitions.map((definition, i) => handle(definition, roundRobinHandlers[i]!)),
      });
      let next = 0;
      return {
        op: () => {
          const definition = definitions[next]!;
          next = next === ROUND_ROBIN - 1 ? 0 : next + 1;
          return mediator.send(definition.create({ n: 1 }));
        },
      };
    }
    case 'query-bare': {
      const mediator = createMediator({ handlers: [handle(PingQuery, pingQueryHandler)] });
      return { op: () => mediator.query(PingQuery.create({ n: 1 })) };
    }
    default:
      throw new Error(`unknown cqrs-ts variant ${variant}`);
  }
}
