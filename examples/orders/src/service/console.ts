/**
 * Mounts the operator console (`@cqrs-ts/console`) under `/console`: the application map, the outbox and its dead
 * letters, the checkout sagas, the order-view projection and the consumer's health. Mutating actions (replay,
 * delete, resume, rebuild) need `Authorization: Bearer <ORDERS_CONSOLE_TOKEN>`; without a token configured the
 * console is read-only.
 */
import { timingSafeEqual } from 'node:crypto';
import { consoleFastify } from '@cqrs-ts/console';
import { createProjectionRunner } from '@cqrs-ts/core';
import type { ServiceParts } from './service.ts';

export async function mountOperatorConsole(parts: ServiceParts, token: string | undefined): Promise<void> {
  const { app, mediator, storage, relay, sagas } = parts;
  // an api-only process shows the projection's status from the store (it runs no loop of its own)
  const runner =
    parts.runner ??
    createProjectionRunner({
      log: storage.log,
      store: storage.projections,
      projections: [storage.orderView],
    });
  const expected = token === undefined ? undefined : Buffer.from(`Bearer ${token}`);
  await app.register(consoleFastify, {
    console: {
      title: 'orders console',
      mediator,
      outbox: { store: storage.outbox, ...(relay === undefined ? {} : { relay }) },
      sagas: { store: storage.sagas, runner: sagas },
      projections: { runner, names: [storage.orderView.name] },
      health: parts.health,
      ...(expected === undefined
        ? { readOnly: true }
        : {
            authorize: ({ request }) => {
              const given = Buffer.from(request.headers.get('authorization') ?? '');
              return given.length === expected.length && timingSafeEqual(given, expected)
                ? { id: 'operator' }
                : undefined;
            },
          }),
    },
  });
}
