import { createInMemorySagaStore, createMediator, validation } from '@cqrs-ts/core';
import type { AdapterOptions } from '@cqrs-ts/http';
import { createSagaRunner, defineSaga, type SagaProgress, sagaContext } from '@cqrs-ts/saga';
import { describe, expect, it } from 'vitest';
import { checkoutProgress } from '../src/service/checkout-http.ts';
import type { CheckoutStatus } from '../src/service/messages.ts';
import { frameworks, readEvents } from './support.ts';

const C = sagaContext<{ orderId: string }>();
/** A checkout whose `charge` waits for `release` (a stand-in for the service's saga). */
function setup() {
  let release!: () => void;
  const gate = new Promise<void>((resolve) => {
    release = resolve;
  });
  const saga = defineSaga({
    name: 'checkout-http',
    context: C,
    steps: [
      C.step({ id: 'open', act: () => ({ open: true }) }),
      C.step({ id: 'charge', act: async () => gate.then(() => ({ paid: 1 })) }),
    ],
  });
  const sagas = createSagaRunner({ store: createInMemorySagaStore() });
  const checkout = checkoutProgress((id, o) => sagas.watch(id, o));
  const options: AdapterOptions = {
    mediator: createMediator({ behaviors: [validation()], handlers: checkout.handlers }),
    routes: checkout.routes,
  };
  return { saga, sagas, options, release };
}

describe.each(Object.keys(frameworks))('checkout progress over HTTP on %s', (framework) => {
  it('streams a running saga live, ends when it is final, resumes by Last-Event-ID, and answers its status', async () => {
    const { saga, sagas, options, release } = setup();
    const server = await frameworks[framework]!(options);
    const { url } = server;
    try {
      const done = sagas.run(saga, { orderId: 'o-1' }, { id: 'o-1' });
      const res = await fetch(`${url}/orders/o-1/checkout/watch`);
      expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/);
      // `charge` is held: the stream shows `open` live, then goes on once the step is released
      const events = await readEvents<SagaProgress>(res, (p) => {
        if (p.kind === 'step' && p.stepId === 'open') release();
        return false;
      });
      await done;
      const steps = events.filter((e) => e.data.kind === 'step');
      expect(steps.map((e) => (e.data as { stepId: string }).stepId)).toEqual(['open', 'charge']);
      expect(steps.map((e) => e.id)).toEqual(steps.map((e) => String(e.data.seq)));
      expect(events.at(-1)!.data).toMatchObject({ kind: 'state', status: 'completed', cursor: 2 });

      const resumed = await readEvents<SagaProgress>(
        await fetch(`${url}/orders/o-1/checkout/watch`, { headers: { 'last-event-id': steps[0]!.id! } }),
        () => false,
      );
      expect(resumed.map((e) => e.data.kind)).toEqual(['step', 'state']);
      expect(resumed[0]!.id).toBe(steps[1]!.id);

      const status = (await (await fetch(`${url}/orders/o-1/checkout`)).json()) as CheckoutStatus;
      expect(status).toMatchObject({ orderId: 'o-1', status: 'completed', cursor: 2 });
      expect(status.steps).toHaveLength(2);
      expect((await fetch(`${url}/orders/o-none/checkout`)).status).toBe(404);
      expect((await fetch(`${url}/orders/o-none/checkout/watch`)).status).toBe(404);
    } finally {
      await server.close();
    }
  });
});
