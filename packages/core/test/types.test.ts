import {
  type AnyMessage,
  type Command,
  createMediator,
  defineCommand,
  defineEvent,
  definePaginatedQuery,
  defineQuery,
  type EmptyPayload,
  type Event,
  handle,
  type InferMessage,
  type InferPayload,
  type InferResult,
  type Query,
  validation,
} from '@cqrs-ts/core';
import * as v from 'valibot';
import { describe, expectTypeOf, it } from 'vitest';
import { z } from 'zod';

const PlaceOrder = defineCommand('orders.place', {
  schema: z.object({ sku: z.string(), qty: z.number() }),
}).returns<{
  orderId: string;
}>();
const GetOrder = defineQuery('orders.get').withPayload<{ id: string }>().returns<{ id: string } | null>();
const Ping = defineCommand('ops.ping');
const Happened = defineEvent('x.happened', { schema: v.object({ at: v.string() }) });
const List = definePaginatedQuery('orders.list', {
  schema: z.object({ status: z.string().optional() }),
}).returns<string[]>();

describe('type inference', () => {
  it('infers the payload from the schema and the result from returns()', () => {
    const cmd = PlaceOrder.create({ sku: 'a', qty: 1 });
    expectTypeOf(cmd).toEqualTypeOf<
      Command<'orders.place', { sku: string; qty: number }, { orderId: string }>
    >();
    expectTypeOf(cmd.type).toEqualTypeOf<'orders.place'>();
    expectTypeOf<InferResult<typeof cmd>>().toEqualTypeOf<{ orderId: string }>();
    expectTypeOf<InferPayload<typeof cmd>>().toEqualTypeOf<{ sku: string; qty: number }>();
    expectTypeOf(PlaceOrder.parse).parameter(0).toEqualTypeOf<{ sku: string; qty: number }>();
    // @ts-expect-error wrong payload shape
    PlaceOrder.create({ sku: 1, qty: 1 });
  });

  it('types queries, defaults and events', () => {
    expectTypeOf<InferMessage<typeof GetOrder>>().toEqualTypeOf<
      Query<'orders.get', { id: string }, { id: string } | null>
    >();
    expectTypeOf<InferResult<InferMessage<typeof Ping>>>().toEqualTypeOf<void>();
    expectTypeOf<InferPayload<InferMessage<typeof Ping>>>().toEqualTypeOf<EmptyPayload>();
    expectTypeOf<InferMessage<typeof Happened>>().toEqualTypeOf<Event<'x.happened', { at: string }>>();
    expectTypeOf<InferPayload<InferMessage<typeof List>>>().toEqualTypeOf<
      { status?: string | undefined } & { readonly page: number; readonly pageSize: number }
    >();
  });

  it('infers send/query results with no casts or type arguments', async () => {
    const mediator = createMediator({
      behaviors: [validation()],
      handlers: [
        handle(PlaceOrder, async (cmd) => {
          expectTypeOf(cmd.payload.sku).toEqualTypeOf<string>();
          return { orderId: cmd.payload.sku };
        }),
        handle(GetOrder, (q) => ({ id: q.payload.id })),
        handle(List, () => ['a']),
      ],
    });
    // @ts-expect-error the handler must return the declared result type
    handle(GetOrder, () => 42);
    expectTypeOf(mediator.send(PlaceOrder.create({ sku: 'a', qty: 1 }))).toEqualTypeOf<
      Promise<{ orderId: string }>
    >();
    expectTypeOf(mediator.query(GetOrder.create({ id: '1' }))).toEqualTypeOf<
      Promise<{ id: string } | null>
    >();
    expectTypeOf(mediator.query(List.create({ page: 1, pageSize: 10 }))).toEqualTypeOf<Promise<string[]>>();
    // @ts-expect-error a query is not a command
    void mediator.send(GetOrder.create({ id: '1' })).catch(() => {});
    // @ts-expect-error a command is not a query
    void mediator.query(PlaceOrder.create({ sku: 'a', qty: 1 })).catch(() => {});
    // @ts-expect-error an event is not a command
    void mediator.send(Happened.create({ at: 'now' })).catch(() => {});
  });

  it('narrows with is()', () => {
    const unknownMessage = PlaceOrder.create({ sku: 'a', qty: 1 }) as AnyMessage;
    if (PlaceOrder.is(unknownMessage)) expectTypeOf(unknownMessage.payload.qty).toEqualTypeOf<number>();
  });
});
