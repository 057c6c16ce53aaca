import {
  type AnyEvent,
  consistencyToken,
  createInMemoryEventStore,
  createInMemoryOutboxStore,
  createInMemoryProjectionStore,
  createProjectionRunner,
  defineEvent,
  defineProjection,
  type EventLog,
} from '@cqrs-ts/core';
import { describe, expect, it } from 'vitest';

const Added = defineEvent('test.wake-added').withPayload<{ id: string }>();

/** A runner whose poll never comes (an hour): only wake-ups move it. */
function world(
  read: (log: EventLog, request: Parameters<EventLog['read']>[0]) => ReturnType<EventLog['read']>,
) {
  const outbox = createInMemoryOutboxStore();
  const memory = createInMemoryEventStore({ outbox });
  const log: EventLog = { ...memory, read: (request) => read(memory, request) };
  const seen: string[] = [];
  const projection = defineProjection<unknown>({
    name: 'wake',
    events: [Added],
    apply: (e) => {
      seen.push((e.payload as { id: string }).id);
    },
  });
  let wake: (() => void) | undefined;
  const runner = createProjectionRunner({
    log,
    store: createInMemoryProjectionStore(),
    projections: [projection],
    pollMs: 3_600_000,
    wakeUp: {
      start: (w) => {
        wake = w;
      },
      stop: () => {},
    },
  });
  const append = async (id: string) => {
    const events = [Added.create({ id }) as AnyEvent];
    await outbox.transaction((tx) => outbox.append(tx, events));
    return events;
  };
  return { runner, append, seen, wake: () => wake!() };
}

describe('projection runner wake-ups', () => {
  it('keeps a wake-up that arrives while a step is reading: the events appended then are applied at once', async () => {
    let reached!: () => void;
    const reading = new Promise<void>((resolve) => {
      reached = resolve;
    });
    let release!: () => void;
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    let reads = 0;
    const w = world(async (log, request) => {
      const batch = await log.read(request); // what the log held when the read ran
      if (++reads === 1) {
        reached();
        await gate;
      }
      return batch;
    });
    w.runner.start();
    try {
      await reading; // the first read found nothing and is still on its way back
      const events = await w.append('a');
      w.wake(); // no step is asleep to hear it
      release();
      await w.runner.waitFor('wake', consistencyToken(events));
      expect(w.seen).toEqual(['a']);
    } finally {
      await w.runner.stop();
    }
  });
});

describe('projection runner and events held back by an open transaction', () => {
  it('looks again at most every 250 ms while they stay held back, however long that lasts (not backing off to pollMs)', async () => {
    let reads = 0;
    let ninth!: () => void;
    const nine = new Promise<void>((resolve) => {
      ninth = resolve;
    });
    const w = world(async (log, request) => {
      const batch = await log.read(request);
      if (++reads === 9) ninth();
      return { ...batch, held: true }; // another transaction, still open, keeps later events unreadable
    });
    w.runner.start();
    try {
      await nine; // 5, 10, 20 ... ms apart, then no further apart than the cap
      const beat = w.runner.heartbeat('wake');
      expect(beat.nextDueAt! - beat.at!).toBeLessThanOrEqual(250);
      expect(beat.nextDueAt! - beat.at!).toBeGreaterThan(0);
    } finally {
      await w.runner.stop();
    }
  });
});
