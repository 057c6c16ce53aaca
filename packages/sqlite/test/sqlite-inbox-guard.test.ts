import { DatabaseSync } from 'node:sqlite';
import { consumerTransaction, createMessageProcessor, defineEvent } from '@cqrs-ts/core';
import { eventAttributes } from '@cqrs-ts/core/spi';
import { createSqliteInboxGuard, migrate } from '@cqrs-ts/sqlite';
import { describe, expect, it } from 'vitest';

const Shipped = defineEvent('guard.shipped').withPayload<{ id: string }>();
const utf8 = new TextEncoder();

describe('sqlite inbox guard', () => {
  it('commits effects with the mark, rolls both back on failure, skips duplicates, serializes messages', async () => {
    const db = new DatabaseSync(':memory:');
    migrate(db);
    db.exec('CREATE TABLE fx (id TEXT NOT NULL)');
    const guard = createSqliteInboxGuard({ database: db });
    const count = () => Number((db.prepare('SELECT count(*) AS n FROM fx').get() as { n: number }).n);
    await expect(
      guard.once('m1', 'c', async (tx) => {
        tx.prepare("INSERT INTO fx VALUES ('a')").run();
        throw new Error('handler failed');
      }),
    ).rejects.toThrow('handler failed');
    expect(count()).toBe(0);
    // two messages at once: the second waits for the first transaction instead of nesting in it
    const slow = guard.once('m1', 'c', async (tx) => {
      await new Promise((r) => setTimeout(r, 20));
      tx.prepare("INSERT INTO fx VALUES ('a')").run();
    });
    const dup = guard.once('m1', 'c', async (tx) => {
      tx.prepare("INSERT INTO fx VALUES ('dup')").run();
    });
    expect(await Promise.all([slow, dup])).toEqual([true, false]);
    expect(count()).toBe(1);
    db.close();
  });

  it('gives processor handlers the transaction', async () => {
    const db = new DatabaseSync(':memory:');
    migrate(db);
    db.exec('CREATE TABLE fx (id TEXT NOT NULL)');
    const processor = createMessageProcessor({
      name: 'shipping',
      inbox: createSqliteInboxGuard({ database: db }),
      handle(event) {
        consumerTransaction<DatabaseSync>()!
          .prepare('INSERT INTO fx VALUES (?)')
          .run((event.payload as { id: string }).id);
      },
    });
    const event = Shipped.create({ id: 's1' });
    const message = {
      attributes: eventAttributes(event, 'test', 'application/json', null),
      data: utf8.encode(JSON.stringify(event.payload)),
      deliveryAttempt: 1,
      source: 'test',
    };
    expect(await processor.process(message)).toEqual({ action: 'ack', outcome: 'handled' });
    expect(await processor.process({ ...message, deliveryAttempt: 2 })).toEqual({
      action: 'ack',
      outcome: 'duplicate',
    });
    expect(db.prepare('SELECT id FROM fx').all()).toEqual([{ id: 's1' }]);
    db.close();
  });
});
