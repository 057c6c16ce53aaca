/**
 * The DI cases (issue 16): a class handler with one scoped dependency, resolved from a new awilix scope per
 * operation, the scope disposed afterwards. `awilix scope by hand` does that around a direct call; `cqrs-ts send
 * awilix scope` sends through a mediator whose container is `awilixContainer(...)`, which does the same per
 * top-level dispatch. Both create their message in each operation (`Ping.create({ n: 1 })`).
 */
import { awilixContainer, registerHandlers } from '@cqrs-ts/awilix';
import { createMediator, handle, type InferMessage } from '@cqrs-ts/core';
import { type AwilixContainer, asClass, createContainer, InjectionMode } from 'awilix';
import type { AsyncOpCase } from '../../lib/types.ts';
import { Ping, type PingResult } from './ping.ts';

/** The scoped dependency: a per-dispatch counter. */
class Calls {
  count = 0;
}

/** The handler of `Ping` as a class: the body of `pingHandler`, plus one use of its dependency. */
class PingHandler {
  readonly #calls: Calls;
  constructor({ calls }: { calls: Calls }) {
    this.#calls = calls;
  }
  async handle(command: InferMessage<typeof Ping>): Promise<PingResult> {
    this.#calls.count++;
    return { ok: true, n: command.payload.n };
  }
}

function container(): AwilixContainer {
  const c = createContainer({ injectionMode: InjectionMode.PROXY, strict: true });
  c.register({ calls: asClass(Calls).scoped() });
  return c;
}

export async function setup(variant: string): Promise<AsyncOpCase> {
  switch (variant) {
    case 'by-hand': {
      const root = container();
      root.register({ pingHandler: asClass(PingHandler).scoped() });
      return {
        op: async () => {
          const scope = root.createScope();
          try {
            return await scope.resolve<PingHandler>('pingHandler').handle(Ping.create({ n: 1 }));
          } finally {
            await scope.dispose();
          }
        },
      };
    }
    case 'mediator': {
      const root = container();
      const handlers = registerHandlers(root, [handle(Ping, PingHandler)]);
      const mediator = createMediator({ handlers, container: awilixContainer(root) });
      return { op: () => mediator.send(Ping.create({ n: 1 })) };
    }
    default:
      throw new Error(`unknown awilix variant ${variant}`);
  }
}
