import {
  type BrokerHandler,
  createInMemoryBroadcastConsumer,
  createInMemoryBroker,
  createInMemoryConsumer,
} from '@cqrs-ts/core';
import { describeBroadcastContract } from '@cqrs-ts/testing/contracts';

let broker = createInMemoryBroker();
let run = 0;
let topic = 'ticks-0';
/** Subscriptions open on the broker: the in-memory broker's resources. */
let subscriptions = 0;
/** The competing consumers: one subscription, each message to the next member in turn (a consumer group). */
let members: BrokerHandler[] = [];
let turn = 0;
let groupSubscribed = false;
const group = () =>
  Object.create(broker, {
    subscribe: {
      value: (t: string, handler: BrokerHandler) => {
        members.push(handler);
        if (!groupSubscribed) {
          groupSubscribed = true;
          broker.subscribe(t, (m) => members[turn++ % members.length]?.(m));
        }
        return () => {
          members = members.filter((h) => h !== handler);
        };
      },
    },
  });

describeBroadcastContract('in-memory', async () => ({
  get topic() {
    return topic;
  },
  publisher: () => broker,
  broadcast: (options) => {
    const counting = Object.create(broker, {
      subscribe: {
        value: (t: string, handler: BrokerHandler) => {
          subscriptions++;
          const unsubscribe = broker.subscribe(t, handler);
          return () => {
            subscriptions--;
            unsubscribe();
          };
        },
      },
    });
    return createInMemoryBroadcastConsumer({ ...options, broker: counting, topics: [topic] });
  },
  competing: (options) =>
    createInMemoryConsumer({ ...options, broker: group(), topics: [topic], name: 'group' }),
  exists: async () => subscriptions > 0,
  async reset() {
    broker = createInMemoryBroker();
    topic = `ticks-${++run}`;
    subscriptions = 0;
    members = [];
    groupSubscribed = false;
  },
  close: async () => {},
}));
