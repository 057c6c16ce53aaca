/**
 * The checkout saga's progress over HTTP, for any saga runner (saga id = order id): `GET /orders/:orderId/checkout`
 * (status and logged steps as JSON, 404 before the checkout started) and `GET /orders/:orderId/checkout/watch`
 * (Server-Sent Events of each logged step and state until the saga is final; SSE id = the log sequence, so a
 * client resumes with `Last-Event-ID`). The same handlers and routes mount on Fastify, Hono and Express.
 */
import { handle, handleStream, NotFoundError } from '@cqrs-ts/core';
import { type HttpRoute, queryRoute, streamRoute } from '@cqrs-ts/http';
import { SagaNotFoundError, type SagaProgress, type SagaRunner, type SagaStepProgress } from '@cqrs-ts/saga';
import { type CheckoutStatus, GetCheckout, WatchCheckout } from './messages.ts';

/** Options of {@link checkoutProgress}. */
export interface CheckoutProgressOptions {
  /** Ends every watch stream (the service is stopping). */
  readonly closing?: AbortSignal;
  /** Re-read the store this often for checkouts another process drives (see `SagaRunner.watch`). */
  readonly recheckMs?: number;
}

const notFound = (orderId: string) => (error: unknown) => {
  if (error instanceof SagaNotFoundError) return new NotFoundError('checkout', orderId);
  return error;
};

/** The handlers and the routes of the checkout progress, over a runner's `watch` (e.g. `runner.watch.bind(runner)`). */
export function checkoutProgress(watchSaga: SagaRunner['watch'], options: CheckoutProgressOptions = {}) {
  async function status(orderId: string): Promise<CheckoutStatus> {
    const steps: SagaStepProgress[] = [];
    try {
      for await (const p of watchSaga(orderId)) {
        if (p.kind === 'step') steps.push(p);
        else return { orderId, status: p.status, cursor: p.cursor, steps };
      }
    } catch (error) {
      throw notFound(orderId)(error);
    }
    throw new NotFoundError('checkout', orderId);
  }

  async function* watch(orderId: string, after: number | undefined, signal: AbortSignal) {
    const stop = options.closing === undefined ? signal : AbortSignal.any([signal, options.closing]);
    try {
      yield* watchSaga(orderId, {
        ...(after === undefined ? {} : { after }),
        ...(options.recheckMs === undefined ? {} : { recheckMs: options.recheckMs }),
        signal: stop,
      });
    } catch (error) {
      throw notFound(orderId)(error);
    }
  }

  return {
    handlers: [
      handle(GetCheckout, async (q) => status(q.payload.orderId)),
      handleStream(WatchCheckout, (q, ctx) => watch(q.payload.orderId, q.payload.after, ctx.signal)),
    ],
    routes: [
      queryRoute(GetCheckout, { path: '/orders/:orderId/checkout' }),
      streamRoute<SagaProgress>(WatchCheckout, {
        path: '/orders/:orderId/checkout/watch',
        resumeField: 'after',
        eventId: (p) => String(p.seq),
      }),
    ] satisfies HttpRoute[],
  };
}
