/**
 * The application the `http` suite serves: one command (validated with zod, answered as JSON), one stream query
 * of {@link SSE_ITEMS} items, and an idempotent command behind the in-memory unit of work. The hand-written
 * routes and the cqrs-ts routes share this mediator, so both do the same work per request.
 */
import { randomUUID } from 'node:crypto';
import type { ExecutionContext } from '@cqrs-ts/core';
import {
  createInMemoryUnitOfWork,
  createMediator,
  defineCommand,
  defineStreamQuery,
  handle,
  handleStream,
  targetBehavior,
} from '@cqrs-ts/core';
import type { AdapterOptions } from '@cqrs-ts/http';
import { commandRoute, streamRoute } from '@cqrs-ts/http';
import { z } from 'zod';

export const SSE_ITEMS = 10_000;

export const orderSchema = z.object({ sku: z.string().min(1), qty: z.number().int().positive() });
export const PlaceOrder = defineCommand('bench.place-order', { schema: orderSchema }).returns<{
  orderId: string;
}>();
export const Pay = defineCommand('bench.pay', {
  schema: z.object({ orderId: z.string(), cents: z.number().int() }),
}).returns<{ paid: number }>();
export const Items = defineStreamQuery('bench.items', {
  schema: z.object({ count: z.number().int().positive() }),
}).yields<{ position: number; sku: string }>();

let placed = 0;
export const mediator = createMediator({
  // validation is done by the route in both variants: the raw one calls zod, the cqrs-ts one parses the definition
  unenforced: ['validation'],
  behaviors: [targetBehavior(createInMemoryUnitOfWork(), { types: ['bench.pay'] })],
  handlers: [
    handle(PlaceOrder, () => ({ orderId: `o-${++placed}` })),
    handle(Pay, (c) => ({ paid: c.payload.cents })),
    handleStream(Items, async function* (q) {
      for (let position = 1; position <= q.payload.count; position++) yield { position, sku: 'book' };
    }),
  ],
});

export const cqrsOptions: AdapterOptions = {
  mediator,
  routes: [
    commandRoute(PlaceOrder, { path: '/orders' }),
    commandRoute(Pay, { path: '/payments' }),
    streamRoute(Items, { path: '/items' }),
  ],
};

/**
 * What a raw route does per request because the cqrs-ts route does it by contract: a request id, the correlation
 * id (the inbound `x-correlation-id`, else the request id) in the message's metadata, both echoed as response
 * headers, and the execution context (`source`, user agent) of the dispatch.
 */
export function rawRequest(header: (name: string) => string | undefined): {
  readonly requestId: string;
  readonly metadata: { readonly requestId: string; readonly correlationId: string };
  readonly options: { readonly context: ExecutionContext };
  readonly headers: Record<string, string>;
} {
  const requestId = randomUUID();
  const correlationId = header('x-correlation-id') ?? requestId;
  const ua = header('user-agent');
  const context: ExecutionContext =
    ua === undefined ? { source: 'http' } : { source: 'http', userAgent: ua.slice(0, 256) };
  return {
    requestId,
    metadata: { requestId, correlationId },
    options: { context },
    headers: { 'x-request-id': requestId, 'x-correlation-id': correlationId },
  };
}

/** The raw routes' validation failure body: a hand-written RFC 9457 problem with every field issue. */
export function rawProblem(error: z.ZodError, requestId: string): string {
  return JSON.stringify({
    type: 'urn:example:problem:validation',
    title: 'The request is invalid',
    status: 400,
    instance: requestId,
    detail: error.issues[0]?.message,
    errors: error.issues.map((i) => ({ pointer: `/${i.path.join('/')}`, message: i.message, code: i.code })),
  });
}

/** The raw SSE frame of an item (`id:` and `data:`), as the cqrs-ts route writes it. */
export function rawFrame(item: { position: number }): string {
  return `id: ${item.position}\ndata: ${JSON.stringify(item)}\n\n`;
}
