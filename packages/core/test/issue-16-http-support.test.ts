import {
  createInMemoryUnitOfWork,
  createMediator,
  defineCommand,
  defineEvent,
  definePaginatedQuery,
  defineQuery,
  defineStreamQuery,
  handle,
  handleStream,
  isCqrsError,
  isRetryable,
  NotFoundError,
  timeout,
  validation,
} from '@cqrs-ts/core';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';

/** What core gives the HTTP edge (issue 16): result schemas, enforced policies, a not-found error. */

describe('result schemas', () => {
  it('are kept on commands, queries and stream queries', () => {
    const result = z.object({ orderId: z.string() });
    expect(defineCommand('h.place', { result }).result).toBe(result);
    expect(defineQuery('h.get', { result }).result).toBe(result);
    expect(defineStreamQuery('h.tail', { result }).result).toBe(result);
    expect(defineCommand('h.bare').result).toBeUndefined();
  });

  it('are refused when they are not Standard Schemas, and on events', () => {
    expect(() => defineCommand('h.bad', { result: {} as never })).toThrow(
      /result must implement Standard Schema/,
    );
    expect(() => defineEvent('h.ev', { result: z.object({}) } as never)).toThrow(
      /events have no result schema/,
    );
  });
});

describe('paginated queries', () => {
  it('say so, with their largest page size, also after withPayload', () => {
    expect(definePaginatedQuery('h.list', { maxPageSize: 50 }).paging).toEqual({ maxPageSize: 50 });
    expect(definePaginatedQuery('h.list').withPayload<{ page: number; pageSize: number }>({}).paging).toEqual(
      {
        maxPageSize: 100,
      },
    );
    expect(defineQuery('h.get').paging).toBeUndefined();
  });
});

describe('describe()', () => {
  it('lists the policies each pipeline enforces', () => {
    const Place = defineCommand('h.place', { schema: z.object({ id: z.string() }) });
    const Get = defineQuery('h.get').withPayload<{ id: string }>();
    const mediator = createMediator({
      behaviors: [validation(), timeout(), createInMemoryUnitOfWork()],
      handlers: [handle(Place, () => {}), handle(Get, () => null)],
    });
    const policies = Object.fromEntries(
      mediator.describe().map((h) => [h.messageType, [...h.policies].sort()]),
    );
    expect(policies).toEqual({
      'h.place': ['idempotency', 'timeout', 'validation'],
      'h.get': ['timeout'], // no schema: validation() stays out of its pipeline
    });
  });
});

describe('NotFoundError', () => {
  it('names what was looked for, is permanent, and reaches the caller', async () => {
    const Get = defineQuery('h.get').withPayload<{ id: string }>();
    const Tail = defineStreamQuery('h.tail').withPayload<{ id: string }>();
    const mediator = createMediator({
      handlers: [
        handle(Get, (q) => {
          throw new NotFoundError('order', q.payload.id);
        }),
        handleStream(Tail, async function* () {
          yield* [];
          throw new NotFoundError('stream');
        }),
      ],
    });
    const error = await mediator.query(Get.create({ id: 'o-"1' })).catch((e: unknown) => e);
    expect(isCqrsError(error, 'CQRS_NOT_FOUND')).toBe(true);
    expect(error).toMatchObject({ resource: 'order', id: 'o-"1', message: 'order "o-\\"1" not found' });
    expect(isRetryable(error)).toBe(false);
    const streamed = await (async () => {
      for await (const _ of mediator.stream(Tail.create({ id: 'x' }))) void _;
    })().catch((e: unknown) => e);
    expect(streamed).toMatchObject({ code: 'CQRS_NOT_FOUND', message: 'stream not found' });
  });
});
