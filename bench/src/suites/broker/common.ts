/** Payloads and helpers shared by the broker case modules, so every broker is measured with the same messages. */
import { type AnyEvent, createInMemoryOutboxStore, defineEvent } from '@cqrs-ts/core';
import { decodeOutboxRecord, type OutboxMessage } from '@cqrs-ts/core/spi';

/** The bench event: a key, a sequence number, a send time (epoch ms, for latency) and ~200 bytes of padding. */
export const Ticked = defineEvent('bench.ticked', {
  key: (p: { k: string; n: number; t: number; pad: string }) => p.k,
}).withPayload<{ k: string; n: number; t: number; pad: string }>();

export const PAD = 'x'.repeat(200);

/** One bench event for `topic`; `keys` ordering keys in rotation. */
export const tick = (n: number, topic: string, t = 0, keys = 100): AnyEvent =>
  ({ ...Ticked.create({ k: `k${n % keys}`, n, t, pad: PAD }), topic }) as AnyEvent;

/** `count` bench events for `topic` over 100 keys. */
export const tickEvents = (count: number, topic: string): AnyEvent[] =>
  Array.from({ length: count }, (_, n) => tick(n, topic));

/** The decoded outbox rows the relay would hand a publisher for `count` events: exactly what it publishes. */
export async function outboxMessages(count: number, topic: string): Promise<OutboxMessage[]> {
  const store = createInMemoryOutboxStore({ source: 'bench' });
  const tx = store.begin();
  await store.append(tx, tickEvents(count, topic));
  tx.commit();
  return store.records().map(decodeOutboxRecord);
}

/** The `q` quantile (0..1) of the samples after the first `skip` (warm-up), in the samples' unit. */
export function quantile(samples: readonly number[], q: number, skip = 0): number {
  const sorted = samples.slice(skip).sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * q))] ?? Number.NaN;
}
