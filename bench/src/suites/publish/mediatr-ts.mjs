/**
 * mediatr-ts case. Plain JavaScript: Node's type stripping cannot run decorators, so `@notificationHandler(...)` is
 * applied as a plain function call. mediatr-ts keeps its registrations in a module-level registry; the case runs in
 * its own process. `mediator.publish(notification)` resolves every handler through the default resolver (a new
 * instance per publish), runs them with `Promise.allSettled` and resolves once all have settled.
 */
import { Mediator, NotificationData, notificationHandler } from 'mediatr-ts';

const counts = { h1: 0, h2: 0, h3: 0, others: 0 };
const calls = () => [counts.h1, counts.h2, counts.h3, counts.others];

class PingedNotification extends NotificationData {
  constructor(payload) {
    super();
    this.payload = payload;
  }
}

class Pinged1Handler {
  async handle(_notification) {
    counts.h1++;
  }
}
class Pinged2Handler {
  async handle(_notification) {
    counts.h2++;
  }
}
class Pinged3Handler {
  async handle(_notification) {
    counts.h3++;
  }
}

export async function setup(variant) {
  if (variant !== 'create-and-publish') throw new Error(`unknown mediatr-ts variant ${variant}`);
  notificationHandler(PingedNotification)(Pinged1Handler);
  notificationHandler(PingedNotification)(Pinged2Handler);
  notificationHandler(PingedNotification)(Pinged3Handler);
  const mediator = new Mediator();
  // The notification is created in each operation (as in every case, for every library).
  return { op: () => mediator.publish(new PingedNotification({ n: 1 })), calls };
}
