import { defineEvent } from '@cqrs-ts/core';
import { createNatsConsumer, createNatsPublisher, ensureNatsStream } from '@cqrs-ts/nats';
import { waitFor } from '@cqrs-ts/testing';
import { type JetStreamManager, jetstreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectTest, deleteStreams, natsAvailable, readStream, unique } from './support.ts';

// Issue 12: JetStream deduplicates on Nats-Msg-Id. It was the event id alone (a second producer reusing an id
// was dropped) and, for dead letters, the stream sequence alone (a second consumer's dead letter was dropped).
const Shipped = defineEvent('i12.shipped', { topic: 'shipped' }).withPayload<{ from: string }>();

describe.skipIf(!natsAvailable)('issue 12: nats identity by source and id', () => {
  let nc: NatsConnection;
  let jsm: JetStreamManager;
  const streams: string[] = [];
  beforeAll(async () => {
    nc = await connectTest();
    jsm = await jetstreamManager(nc);
  });
  afterAll(async () => {
    await deleteStreams(jsm, ...streams);
    await nc.close();
  });
  async function setup() {
    const stream = unique('I12');
    const prefix = stream.toLowerCase();
    streams.push(stream, `${stream}_DLQ`);
    await ensureNatsStream({ connection: nc, name: stream, subjects: [`${prefix}.>`] });
    return { stream, prefix };
  }

  it('keeps the events of two sources that use the same id, and still drops a re-publish', async () => {
    const { stream, prefix } = await setup();
    const eu = await createNatsPublisher({
      connection: nc,
      subjectPrefix: prefix,
      source: 'https://eu.example/shop',
    });
    const us = await createNatsPublisher({
      connection: nc,
      subjectPrefix: prefix,
      source: 'https://us.example/shop',
    });
    try {
      const requestId = '0190b6f4-8d7e-7c3a-9f00-0123456789ab';
      await eu.publishEvents([Shipped.create({ from: 'eu' }, { requestId })]);
      await us.publishEvents([Shipped.create({ from: 'us' }, { requestId })]);
      await eu.publishEvents([Shipped.create({ from: 'eu' }, { requestId })]); // a re-publish
      const stored = await readStream(nc, stream);
      expect(stored.map((m) => m.headers?.get('ce-source'))).toEqual([
        'https://eu.example/shop',
        'https://us.example/shop',
      ]);
      expect(stored.map((m) => m.headers?.get('Nats-Msg-Id'))).toEqual([
        `https://eu.example/shop ${requestId}`,
        `https://us.example/shop ${requestId}`,
      ]);
    } finally {
      await eu.close();
      await us.close();
    }
  });

  it('keeps one dead letter per consumer when two consumers give up on the same message', async () => {
    const { stream, prefix } = await setup();
    const publisher = await createNatsPublisher({ connection: nc, subjectPrefix: prefix });
    const failing = (name: string) =>
      createNatsConsumer({
        connection: nc,
        stream,
        name,
        maxAttempts: 1,
        handle() {
          throw new Error(`${name} cannot handle it`);
        },
      });
    const billing = failing('billing');
    const shipping = failing('shipping');
    try {
      await publisher.publishEvents([Shipped.create({ from: 'eu' })]);
      await billing.start();
      await shipping.start();
      await waitFor(
        () => billing.health().deadLettered === 1 && shipping.health().deadLettered === 1,
        10_000,
        'both dead letters',
      );
      const dead = await readStream(nc, `${stream}_DLQ`);
      expect(dead.map((m) => m.headers?.get('ce-deadletterconsumer')).sort()).toEqual([
        'billing',
        'shipping',
      ]);
    } finally {
      await billing.stop();
      await shipping.stop();
      await publisher.close();
    }
  });
});
