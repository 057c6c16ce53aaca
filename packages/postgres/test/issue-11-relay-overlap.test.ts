/**
 * Issue 11: the relay drains a backlog faster when it locks and publishes the next batch while the previous one
 * commits. The store lets it: rows listed in `committing` (the previous batch's, published, still locked by its
 * transaction) block nothing, so the next lock takes the later rows of their keys; rows locked by any other
 * transaction still block their keys.
 */
import { type AnyEvent, defineEvent } from '@cqrs-ts/core';
import type { OutboxRecord } from '@cqrs-ts/core/spi';
import { createPostgresOutboxStore, migrate } from '@cqrs-ts/postgres';
import { describe, expect, it } from 'vitest';
import { available, connect, FLAVORS } from './support.ts';

const Ticked = defineEvent('overlap.ticked', {
  topic: 'ticks',
  key: (p: { k: string; n: number }) => p.k,
}).withPayload<{ k: string; n: number }>();

describe.skipIf(!available)('issue 11: a locked batch past the rows of the one committing', () => {
  for (const flavor of FLAVORS) {
    it(`${flavor}: rows in committing block nothing; other locked rows still block their keys`, async () => {
      const c = await connect(flavor, 'ovl');
      const tables = { outbox: `ob_${c.sfx}`, inbox: `ib_${c.sfx}` };
      const names = [tables.outbox, tables.inbox, `${tables.outbox}_archive`, `${tables.outbox}_stream`];
      try {
        await migrate(c.pool, { tables });
        const store = createPostgresOutboxStore({ client: c.client, tables, notifyChannel: false });
        expect(store.overlapsLocked).toBe(true);
        const events = Array.from(
          { length: 8 },
          (_, i) => Ticked.create({ k: `k${i % 2}`, n: Math.floor(i / 2) }) as AnyEvent,
        );
        await c.tx((t) => store.append(t, events));
        const payload = (r: OutboxRecord) =>
          JSON.parse(new TextDecoder().decode(r.payload)) as { k: string; n: number };

        /** What a second cycle locks (then rolls back) while a first one holds `first` rows locked. */
        const lockedMeanwhile = async (
          committing: (first: readonly OutboxRecord[]) => number[] | undefined,
        ) => {
          let first: OutboxRecord[] = [];
          let second: OutboxRecord[] = [];
          await store.processLocked!({ limit: 4, now: Date.now() }, async (records) => {
            first = [...records];
            const passed = committing(records);
            await store.processLocked!(
              { limit: 4, now: Date.now(), ...(passed === undefined ? {} : { committing: passed }) },
              async (next) => {
                second = [...next];
                return undefined;
              },
            );
            return undefined;
          });
          return { first: first.map(payload), second: second.map(payload) };
        };

        // without `committing` the first batch's locked rows block both keys
        const blocked = await lockedMeanwhile(() => undefined);
        expect(blocked.first).toEqual([
          { k: 'k0', n: 0 },
          { k: 'k1', n: 0 },
          { k: 'k0', n: 1 },
          { k: 'k1', n: 1 },
        ]);
        expect(blocked.second).toEqual([]);
        // with them all in `committing`, the next lock takes the later rows of both keys
        const passed = await lockedMeanwhile((first) => first.map((r) => r.seq));
        expect(passed.second).toEqual([
          { k: 'k0', n: 2 },
          { k: 'k1', n: 2 },
          { k: 'k0', n: 3 },
          { k: 'k1', n: 3 },
        ]);
        // a row of the first batch left out of `committing` (it failed) still blocks its key
        const k1Only = await lockedMeanwhile((first) =>
          first.filter((r) => payload(r).k === 'k1').map((r) => r.seq),
        );
        expect(k1Only.second).toEqual([
          { k: 'k1', n: 2 },
          { k: 'k1', n: 3 },
        ]);
      } finally {
        await c.end(...names);
      }
    });
  }
});
