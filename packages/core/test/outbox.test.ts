import { createInMemoryOutboxStore, type InMemoryOutboxTransaction } from '@cqrs-ts/core';
import type { OutboxEncoderOptions } from '@cqrs-ts/core/spi';
import { describeOutboxContract } from './support/outbox-contract.ts';

let current = createInMemoryOutboxStore();
let effects = 0;
const marks = new Map<string, number>();

describeOutboxContract<InMemoryOutboxTransaction>('in-memory', async () => ({
  store(options?: OutboxEncoderOptions) {
    current = createInMemoryOutboxStore(options);
    return current;
  },
  inbox: (() => {
    return {
      async markProcessed(
        tx: InMemoryOutboxTransaction & { marks?: string[] },
        id: string,
        consumer: string,
        now: number,
      ) {
        const k = `${consumer}\u0000${id}`;
        if (marks.has(k)) return false;
        marks.set(k, now);
        tx.marks ??= [];
        tx.marks.push(k);
        return true;
      },
      async purge(before: number) {
        let n = 0;
        for (const [k, t] of marks) if (t < before && marks.delete(k)) n++;
        return n;
      },
    };
  })(),
  async tx(fn) {
    const tx = current.begin() as InMemoryOutboxTransaction & { effects?: number };
    try {
      const r = await fn(tx);
      tx.commit();
      effects += tx.effects ?? 0;
      return r;
    } catch (e) {
      tx.rollback();
      for (const k of (tx as { marks?: string[] }).marks ?? []) marks.delete(k);
      throw e;
    }
  },
  async rollback(fn) {
    const tx = current.begin();
    await fn(tx);
    tx.rollback();
  },
  async withClosedTx(fn) {
    const tx = current.begin();
    tx.commit();
    await fn(tx);
  },
  async rows() {
    return current.records();
  },
  async recordEffect(tx) {
    const t = tx as InMemoryOutboxTransaction & { effects?: number };
    t.effects = (t.effects ?? 0) + 1;
  },
  async effects() {
    return effects;
  },
  async reset() {
    current = createInMemoryOutboxStore();
    effects = 0;
    marks.clear();
  },
  async close() {},
}));
