import {
  createInMemoryEventStore,
  createLogDecoder,
  createMessageCatalog,
  defineEvent,
  LOG_START,
} from '@cqrs-ts/core';

const ItemAdded = defineEvent('cart.item-added').withPayload<{ cartId: string; sku: string }>();
const Audited = defineEvent('audit.recorded').withPayload<{ what: string }>();

// In memory: the embedded default. The storage packages have the same API over their outbox tables.
const store = createInMemoryEventStore();
console.log(`positions: ${store.capabilities.positions}`);

await store.transaction(async (tx) => {
  // an aggregate's stream: versions 1, 2; the expectation is checked first
  await store.appendToStream(
    tx,
    'cart-c1',
    [ItemAdded.create({ cartId: 'c1', sku: 'book' }), ItemAdded.create({ cartId: 'c1', sku: 'pen' })],
    { expectedVersion: 'no-stream' },
  );
  // an event of no stream, through the outbox as before: it is in the log too
  await store.outbox.append(tx, [Audited.create({ what: 'cart c1 filled' })]);
});

// Follow the log: read a bounded batch after a checkpoint, handle it, keep the new checkpoint.
const decoder = createLogDecoder({ catalog: createMessageCatalog([ItemAdded, Audited]) });
let checkpoint = LOG_START;
for (;;) {
  const batch = await store.read({ after: checkpoint, limit: 2 });
  if (batch.entries.length === 0) break;
  for (const entry of batch.entries) {
    const event = await decoder.decode(entry);
    console.log(`${entry.position} ${event.type} ${entry.streamId ?? '-'}@${entry.streamVersion ?? '-'}`);
  }
  checkpoint = batch.position; // store it with what you built from the batch
}

// Only some types, and one stream by version.
const audits = await store.read({ types: [Audited.type] });
console.log(`audit events: ${audits.entries.length}`);
const cart = await store.readStream('cart-c1', { fromVersion: 2 });
console.log(`cart-c1 from version 2: ${cart.map((e) => e.streamVersion).join(', ')}`);
