import { createAvailabilityListeners } from '@cqrs-ts/core/spi';
import { describe, expect, it } from 'vitest';

describe('createAvailabilityListeners (a publisher onAvailable)', () => {
  it('tells every listener, also after one of them throws, until it is removed', () => {
    const heard: string[] = [];
    const listeners = createAvailabilityListeners();
    listeners.add(() => {
      throw new Error('its own failure');
    });
    const removeB = listeners.add(() => heard.push('b'));
    listeners.add(() => heard.push('c'));
    listeners.notify();
    expect(heard).toEqual(['b', 'c']);
    removeB();
    removeB(); // twice is harmless
    listeners.notify();
    expect(heard).toEqual(['b', 'c', 'c']);
  });

  it('watches its source only while it has listeners, and stops at clear()', () => {
    const events: string[] = [];
    const listeners = createAvailabilityListeners((notify) => {
      events.push('watch');
      expect(typeof notify).toBe('function');
      return () => events.push('unwatch');
    });
    const a = listeners.add(() => {});
    const b = listeners.add(() => {});
    expect(events).toEqual(['watch']);
    a();
    expect(events).toEqual(['watch']);
    b();
    expect(events).toEqual(['watch', 'unwatch']);
    listeners.add(() => {});
    listeners.clear();
    listeners.clear();
    expect(events).toEqual(['watch', 'unwatch', 'watch', 'unwatch']);
    // cleared for good: a listener added after clear() is never called and watches nothing
    const late = listeners.add(() => events.push('late'));
    listeners.notify();
    late();
    expect(events).toEqual(['watch', 'unwatch', 'watch', 'unwatch']);
  });

  it('refuses a listener that is not a function', () => {
    expect(() => createAvailabilityListeners().add(42 as never)).toThrow(/onAvailable needs a function/);
  });
});
