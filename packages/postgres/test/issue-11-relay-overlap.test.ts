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

        const held: { first: OutboxRecord[]; blocked: number; passed: OutboxRecord[] } = {
          first: [],
          blocked: -1,
          passed: [],
        };
        await store.processLocked!({ limit: 4, now: Date.now() }, async (first) => {
          held.first = [...first];
          const seqs = first.map((r) => r.seq);
          // without `committing` the first batch's locked rows block both keys
          await store.processLocked!({ limit: 4, now: Date.now() }, async (records) => {
            held.blocked = records.length;
            return undefined;
          });
          await store.processLocked!({ limit: 4, now: Date.now(), committing: seqs }, async (records) => {
            held.passed = [...records];
            return undefined;
          });
          return undefined;
        });
        expect(held.first.map(payload)).toEqual([
          { k: 'k0', n: 0 },
          { k: 'k1', n: 0 },
          { k: 'k0', n: 1 },
          { k: 'k1', n: 1 },
        ]);
        expect(held.blocked).toBe(0);
        expect(held.passed.map(payload)).toEqual([
          { k: 'k0', n: 2 },
          { k: 'k1', n: 2 },
          { k: 'k0', n: 3 },
          { k: 'k1', n: 3 },
        ]);

        // a row of the first batch left out of `committing` (it failed) still blocks its key
        held.passed = [];
        await store.processLocked!({ limit: 4, now: Date.now() }, async (first) => {
          const k1 = first.filter((r) => payload(r).k === 'k1').map((r) => r.seq);
          await store.processLocked!({ limit: 4, now: Date.now(), committing: k1 }, async (records) => {
            held.passed = [...records];
            return undefined;
          });
          return undefined;
        });
        expect(held.passed.map(payload)).toEqual([
          { k: 'k1', n: 2 },
          { k: 'k1', n: 3 },
        ]);
      } finally {
        await c.end(...names);
      }
    });
  }
});
