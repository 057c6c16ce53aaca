// The smaller examples of the core README, one region each (the README shows each region; readme.test.ts runs
// this file). Lines outside the regions only print what the regions did.
import {
  AggregateRoot,
  authorization,
  createInMemoryBroker,
  createInMemoryOutboxStore,
  createMediator,
  createMessageCatalog,
  createMessageProcessor,
  createOutboxRelay,
  defineBehavior,
  defineCommand,
  defineEvent,
  defineQuery,
  defineStreamQuery,
  handle,
  handleChain,
  handleStream,
  type InferMessage,
  on,
  retry,
  timeout,
  validation,
} from '@cqrs-ts/core';
import { z } from 'zod';

const PlaceOrder = defineCommand('orders.place-order', {
  schema: z.object({ sku: z.string().min(1), quantity: z.number().int().positive() }),
}).returns<{ orderId: string }>();

const mediator = createMediator({
  messages: [PlaceOrder], // every declared command/query must have a handler
  // the schema needs validation(), the timeout timeout(), the retries retry(): a missing one fails here
  behaviors: [validation(), authorization(), retry(), timeout()],
  handlers: [
    handle(PlaceOrder, async (cmd, ctx) => ({ orderId: `${cmd.payload.sku}-${ctx.execution.user?.id}` }), {
      timeout: 2_000, // per attempt
      retries: 3, // 3 retries after the first attempt: 4 calls at most
    }),
  ],
});

const { orderId } = await mediator.send(PlaceOrder.create({ sku: 'A-1', quantity: 1 }), {
  context: { user: { id: 'u-1' }, tenantId: 'acme' },
});
console.log(`placed ${orderId}`);

{
  // #region handlers
  const GetOrder = defineQuery('orders.get-order').withPayload<{ id: string }>().returns<string | null>();
  const store = new Map([['o-1', 'A-1 x 2']]);
  class GetOrderHandler {
    handle(query: InferMessage<typeof GetOrder>) {
      return store.get(query.payload.id) ?? null;
    }
  }

  const byFunction = handle(GetOrder, (query) => store.get(query.payload.id) ?? null); // function
  const byClass = handle(GetOrder, GetOrderHandler, { timeout: 500 }); // class: new instance per dispatch
  // #endregion handlers
  const classMediator = createMediator({ handlers: [byClass], behaviors: [timeout()] });
  const functionMediator = createMediator({ handlers: [byFunction] });
  console.log(
    `get-order: ${await classMediator.query(GetOrder.create({ id: 'o-1' }))}, ${await functionMediator.query(GetOrder.create({ id: 'o-2' }))}`,
  );
}

{
  const durations: string[] = [];
  const metrics = { observe: (type: string, ms: number) => void durations.push(`${type} ${ms >= 0}`) };
  // #region behavior
  const timing = defineBehavior(
    'timing',
    async (message, ctx, next) => {
      const t = performance.now();
      try {
        return await next(message, ctx);
      } finally {
        metrics.observe(message.type, performance.now() - t);
      }
    },
    { kinds: ['command'], tags: ['billing'] },
  ); // target by kind, type or tag
  // #endregion behavior
  const Bill = defineCommand('billing.bill').withPayload<{ cents: number }>().returns<number>();
  const timed = createMediator({
    behaviors: [timing],
    handlers: [handle(Bill, (c) => c.payload.cents, { tags: ['billing'] })],
  });
  await timed.send(Bill.create({ cents: 100 }));
  console.log(`timed: ${durations.join(', ')}`);
}

{
  const sent: string[] = [];
  const sendReceipt = (e: InferMessage<typeof OrderPlaced>) => void sent.push(`receipt ${e.payload.orderId}`);
  const updateStatistics = (e: InferMessage<typeof OrderPlaced>) =>
    void sent.push(`stats ${e.payload.orderId}`);
  const logger = console;
  // #region events
  const OrderPlaced = defineEvent('orders.order-placed', {
    topic: 'orders', // broker topic (default: the type)
    key: (p: { orderId: string }) => p.orderId, // ordering key, e.g. the aggregate id
    category: 'notification', // 'domain' (default) | 'notification' | 'ecst'
  }).withPayload<{ orderId: string }>();

  const mediator = createMediator({
    handlers: [
      handle(
        PlaceOrder,
        (_cmd, ctx) => {
          ctx.emit(OrderPlaced, { orderId: 'o-1' }); // linked: same correlation id, causation = this request
          return { orderId: 'o-1' };
        },
        { emits: [OrderPlaced] },
      ), // declared for the application map
      on(OrderPlaced, sendReceipt), // any number of handlers per event
      on(OrderPlaced, updateStatistics),
    ],
    behaviors: [validation()],
    events: { strategy: 'parallel', concurrency: 8, maxDepth: 8, failurePolicy: 'report' },
    onError: (error, { handler, event }) => logger.error({ err: error, handler, type: event.type }),
  });
  // #endregion events
  await mediator.send(PlaceOrder.create({ sku: 'A-1', quantity: 1 }));
  console.log(`events: ${sent.sort().join(', ')}`);
}

{
  type Order = { id: number };
  const OrderStreamed = defineEvent('orders.order-streamed').withPayload<{ id: number }>();
  const db = {
    async *cursor(from: number, _options: { signal: AbortSignal }): AsyncGenerator<Order> {
      for (let id = from; id < from + 3; id++) yield { id };
    },
  };
  const signal = AbortSignal.timeout(5_000);
  const streamed: number[] = [];
  // #region streams
  const TailOrders = defineStreamQuery('orders.tail').withPayload<{ from: number }>().yields<Order>();
  const tail = handleStream(TailOrders, async function* (q, ctx) {
    for await (const order of db.cursor(q.payload.from, { signal: ctx.signal })) {
      ctx.emit(OrderStreamed, { id: order.id }); // dispatched before this item reaches the consumer
      yield order;
    }
  });
  const mediator = createMediator({ handlers: [tail] });
  for await (const order of mediator.stream(TailOrders.create({ from: 0 }), { signal })) {
    streamed.push(order.id);
  }
  // #endregion streams
  console.log(`streamed: ${streamed.join(', ')}`);
}

{
  type Quote = InferMessage<typeof Quote>;
  const Quote = defineQuery('shipping.quote')
    .withPayload<{ country: string }>()
    .returns<{ carrier: string; price: number }>();
  const laPoste = (_q: Quote) => ({ carrier: 'la-poste', price: 5 });
  const dhl = (_q: Quote) => ({ carrier: 'dhl', price: 12 });
  const isEu = (q: Quote) => ['DE', 'IT', 'ES'].includes(q.payload.country);
  // #region chain
  const quote = handleChain(
    Quote,
    [
      function domestic(q, _ctx, next) {
        return q.payload.country === 'FR' ? laPoste(q) : next();
      },
      { name: 'europe', handle: (q, _ctx, next) => (isEu(q) ? dhl(q) : next()) },
    ],
    {
      fallback: function manual() {
        return { carrier: 'manual', price: 0 };
      },
    },
  );
  // #endregion chain
  const chained = createMediator({ handlers: [quote] });
  const carriers = [];
  for (const country of ['FR', 'DE', 'US'])
    carriers.push((await chained.query(Quote.create({ country }))).carrier);
  console.log(`quotes: ${carriers.join(', ')}`);
}

{
  // #region builders
  const cmd = await PlaceOrder.builder()
    .set('sku', 'A-1')
    .with({ quantity: 2 })
    .correlate('c-1')
    .by('user-7')
    .tenant('acme')
    .attribute('schema', 'v2')
    .build(); // validates
  const result = await PlaceOrder.builder().with({ sku: 'A-1', quantity: 2 }).executeWith(mediator);
  // #endregion builders
  console.log(`built: ${cmd.metadata.correlationId} ${cmd.metadata.tenantId}, executed: ${result.orderId}`);
}

{
  const OrderPlaced = defineEvent('orders.placed').withPayload<{ orderId: string }>();
  type OrderEvent = InferMessage<typeof OrderPlaced>;
  // #region aggregate-root
  class Order extends AggregateRoot<OrderEvent> {
    status = 'new';
    readonly id: string;
    constructor(id: string) {
      super();
      this.id = id;
    }
    place() {
      this.raise(OrderPlaced.create({ orderId: this.id }));
    }
    protected apply(event: OrderEvent) {
      if (OrderPlaced.is(event)) this.status = 'placed';
    }
  }
  // #endregion aggregate-root
  const order = new Order('o-9');
  order.place();
  console.log(`aggregate: ${order.status}, ${order.pullEvents().length} event, version ${order.version}`);
}

{
  const OrderPlaced = defineEvent('orders.order-placed').withPayload<{ orderId: string }>();
  const shipped: string[] = [];
  const catalog = createMessageCatalog([OrderPlaced]);
  const shippingMediator = createMediator({
    handlers: [on(OrderPlaced, (e) => void shipped.push(e.payload.orderId))],
  });
  // #region outbox
  const outbox = createInMemoryOutboxStore({ source: 'orders-service' });
  const tx = outbox.begin();
  await outbox.append(tx, [OrderPlaced.create({ orderId: 'o-1' })]); // in the business transaction
  tx.commit();

  const broker = createInMemoryBroker();
  const processor = createMessageProcessor({
    name: 'shipping',
    mediator: shippingMediator,
    catalog,
    maxAttempts: 5,
  });
  broker.subscribe('*', async (m) => {
    const d = await processor.process({
      attributes: m.headers,
      data: m.body,
      deliveryAttempt: 1,
      source: m.topic,
    });
    if (d.action !== 'ack') throw new Error(d.action); // a real broker consumer retries or dead-letters instead
  });
  await createOutboxRelay({ store: outbox, publisher: broker }).runOnce();
  // #endregion outbox
  console.log(`shipped: ${shipped.join(', ')}`);
}
