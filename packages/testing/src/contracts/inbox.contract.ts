/**
 * Contract of the inbox storage port (`InboxStore` of `@cqrs-ts/core/spi`) and of an adapter's `InboxGuard`:
 * one mark per message and consumer, written in the caller's transaction (a rollback removes it with the
 * handler's effects), concurrent duplicates resolved to one effect, retention, typed storage errors.
 * @module
 */
import {
  consumerTransaction,
  createMessageProcessor,
  defineEvent,
  type IncomingMessage,
  isCqrsError,
  processOnce,
} from '@cqrs-ts/core';
import { eventAttributes, type InboxGuard, type InboxStore, uuidv7 } from '@cqrs-ts/core/spi';
import { expect } from 'vitest';
import { describeHarness } from './harness.ts';

/** What a storage adapter provides to run {@link describeInboxContract}. */
export interface InboxHarness<TTx> {
  /** The store over the harness's tables. */
  readonly inbox: InboxStore<TTx>;
  /** Runs `fn` in a new transaction: commits when it resolves, rolls back when it throws. */
  tx<T>(fn: (tx: TTx) => Promise<T>): Promise<T>;
  /** Records one effect of `messageId` in `tx` (a row in a table of the harness), kept only if `tx` commits. */
  recordEffect(tx: TTx, messageId: string): Promise<void>;
  /** Committed effects. */
  effects(): Promise<number>;
  /** `false` when two transactions cannot be open at once (one SQLite connection): skips the concurrent case. */
  readonly concurrentTransactions?: boolean;
  /** The adapter's guard over the same tables, when it ships one. */
  guard?(): InboxGuard<TTx>;
  /** A guard whose inbox table does not exist: `once` must fail with a `StorageError` and run nothing. */
  guardWithoutTable?(): InboxGuard<TTx>;
  /** Deletes every mark and effect (between tests). */
  reset(): Promise<void>;
  close(): Promise<void>;
}

const handlerFailed = new Error('handler failed after its effect');
const Shipped = defineEvent('contract.shipped').withPayload<{ id: string }>();
const utf8 = new TextEncoder();

/**
 * Registers the inbox contract for one adapter: the store through `processOnce`, and the guard when the
 * harness has one. `setup` runs once (return `undefined` to skip); `reset` runs before each test.
 */
export function describeInboxContract<TTx>(
  name: string,
  setup: () => Promise<InboxHarness<TTx> | undefined>,
): void {
  describeHarness(`${name} inbox contract`, setup, (test) => {
    const run = (
      title: string,
      fn: (h: InboxHarness<TTx>) => Promise<void>,
      when?: (h: InboxHarness<TTx>) => boolean,
    ) => test(title, fn, when === undefined ? {} : { when });
    const once = (h: InboxHarness<TTx>, id: string, consumer: string) =>
      h.tx((tx) => processOnce(h.inbox, tx, id, consumer, (t) => h.recordEffect(t, id)));

    run('runs a handler once per message and consumer', async (h) => {
      const id = uuidv7();
      expect((await once(h, id, 'billing')).status).toBe('processed');
      expect((await once(h, id, 'billing')).status).toBe('duplicate');
      expect((await once(h, id, 'shipping')).status).toBe('processed');
      expect((await once(h, uuidv7(), 'billing')).status).toBe('processed');
      expect(await h.effects()).toBe(3);
    });

    run(
      'ids and consumer names compare byte for byte: case, accents and trailing spaces make them differ',
      async (h) => {
        for (const id of ['Order-1', 'order-1', 'ORDER-1', 'order-1 ', 'ordér-1'])
          expect((await once(h, id, 'billing')).status, JSON.stringify(id)).toBe('processed');
        expect((await once(h, 'order-1', 'Billing')).status).toBe('processed');
        expect((await once(h, 'order-1', 'billing ')).status).toBe('processed');
        expect((await once(h, 'order-1', 'billing')).status).toBe('duplicate');
        expect(await h.effects()).toBe(7);
      },
    );

    run('a rolled-back transaction leaves neither the mark nor the effect', async (h) => {
      const id = uuidv7();
      const failed = await h
        .tx(async (tx) => {
          await processOnce(h.inbox, tx, id, 'billing', (t) => h.recordEffect(t, id));
          throw handlerFailed;
        })
        .catch((e: unknown) => e);
      expect(failed).toBe(handlerFailed);
      expect(await h.effects()).toBe(0);
      expect((await once(h, id, 'billing')).status).toBe('processed');
      expect(await h.effects()).toBe(1);
    });

    run(
      'concurrent transactions marking the same message run the handler once',
      async (h) => {
        const id = uuidv7();
        const results = await Promise.all(Array.from({ length: 4 }, () => once(h, id, 'billing')));
        expect(results.filter((r) => r.status === 'processed')).toHaveLength(1);
        expect(results.filter((r) => r.status === 'duplicate')).toHaveLength(3);
        expect(await h.effects()).toBe(1);
      },
      (h) => h.concurrentTransactions !== false,
    );

    run('purge deletes the marks processed before the given time and counts them', async (h) => {
      const [a, b] = [uuidv7(), uuidv7()];
      await once(h, a, 'billing');
      await once(h, b, 'billing');
      expect(await h.inbox.purge(Date.now() - 60_000)).toBe(0);
      expect(await h.inbox.purge(Date.now() + 1000)).toBe(2);
      expect((await once(h, a, 'billing')).status).toBe('processed');
    });

    run('refuses an empty or over-long id or consumer before touching the store', async (h) => {
      for (const [id, consumer] of [
        ['', 'billing'],
        ['x'.repeat(256), 'billing'],
        [uuidv7(), ''],
      ] as const) {
        const error = await once(h, id, consumer).catch((e: unknown) => e);
        expect(isCqrsError(error, 'CQRS_CONFIGURATION')).toBe(true);
      }
      expect(await h.effects()).toBe(0);
    });

    run(
      'identifies a message by source and id: another source reusing the id is not a duplicate',
      async (h) => {
        const id = 'order-42';
        const mark = (source: string) =>
          h.tx((tx) =>
            processOnce(h.inbox, tx, id, 'billing', (t) => h.recordEffect(t, `${source} ${id}`), source),
          );
        expect((await mark('urn:shop:eu')).status).toBe('processed');
        expect((await mark('urn:shop:us')).status).toBe('processed');
        expect((await mark('urn:shop:eu')).status).toBe('duplicate');
        // without a source ('' as marks written before sources were kept) it is a third identity
        expect((await once(h, id, 'billing')).status).toBe('processed');
        expect(await h.effects()).toBe(3);
      },
    );

    const hasGuard = (h: InboxHarness<TTx>) => h.guard !== undefined;

    run(
      'the guard keys a message by its source and id',
      async (h) => {
        const guard = h.guard!();
        const work = (tx: TTx) => h.recordEffect(tx, 'shared-id');
        expect(await guard.once('shared-id', 'billing', work, 'https://eu.example.com/orders')).toBe(true);
        expect(await guard.once('shared-id', 'billing', work, 'https://us.example.com/orders')).toBe(true);
        expect(await guard.once('shared-id', 'billing', work, 'https://eu.example.com/orders')).toBe(false);
        expect(await h.effects()).toBe(2);
      },
      hasGuard,
    );

    run(
      'the guard commits the work with the mark and skips a redelivery',
      async (h) => {
        const guard = h.guard!();
        const id = uuidv7();
        const work = (tx: TTx) => h.recordEffect(tx, id);
        expect(await guard.once(id, 'billing', work)).toBe(true);
        expect(await guard.once(id, 'billing', work)).toBe(false);
        expect(await guard.once(id, 'shipping', work)).toBe(true);
        expect(await h.effects()).toBe(2);
      },
      hasGuard,
    );

    run(
      'the guard passes a failing handler’s error through unchanged and rolls its work back',
      async (h) => {
        const guard = h.guard!();
        const id = uuidv7();
        const error = await guard
          .once(id, 'billing', async (tx) => {
            await h.recordEffect(tx, id);
            throw handlerFailed;
          })
          .catch((e: unknown) => e);
        expect(error).toBe(handlerFailed);
        expect(await h.effects()).toBe(0);
        expect(await guard.once(id, 'billing', (tx) => h.recordEffect(tx, id))).toBe(true);
        expect(await h.effects()).toBe(1);
      },
      hasGuard,
    );

    run(
      'the guard runs concurrent deliveries of one message once',
      async (h) => {
        const guard = h.guard!();
        const id = uuidv7();
        const ran = await Promise.all(
          Array.from({ length: 4 }, () => guard.once(id, 'billing', (tx) => h.recordEffect(tx, id))),
        );
        expect(ran.filter(Boolean)).toHaveLength(1);
        expect(await h.effects()).toBe(1);
      },
      hasGuard,
    );

    run(
      'a message processor with the guard hands handlers the transaction and acks a redelivery as a duplicate',
      async (h) => {
        const processor = createMessageProcessor({
          name: 'shipping',
          inbox: h.guard!(),
          async handle(event) {
            const tx = consumerTransaction<TTx>();
            if (tx === undefined) throw new Error('no inbox transaction');
            await h.recordEffect(tx, (event.payload as { id: string }).id);
          },
        });
        const event = Shipped.create({ id: 's1' });
        const message: IncomingMessage = {
          attributes: eventAttributes(event, 'contract', 'application/json', null),
          data: utf8.encode(JSON.stringify(event.payload)),
          deliveryAttempt: 1,
          source: 'contract',
        };
        expect(await processor.process(message)).toEqual({ action: 'ack', outcome: 'handled' });
        expect(await processor.process({ ...message, deliveryAttempt: 2 })).toEqual({
          action: 'ack',
          outcome: 'duplicate',
        });
        expect(await h.effects()).toBe(1);
      },
      hasGuard,
    );

    run(
      'a guard whose table is missing fails with a storage error and runs nothing',
      async (h) => {
        let ran = false;
        const error = await h.guardWithoutTable!()
          .once(uuidv7(), 'billing', async () => {
            ran = true;
          })
          .catch((e: unknown) => e);
        expect(isCqrsError(error, 'CQRS_STORAGE')).toBe(true);
        expect((error as { reason?: string }).reason).toBe('missing-table');
        expect(ran).toBe(false);
      },
      (h) => h.guardWithoutTable !== undefined,
    );
  });
}
