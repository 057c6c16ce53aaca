import { ConfigurationError } from '../errors/cqrs-error.ts';

/** The listeners behind a publisher's `onAvailable` (see `MessagePublisher.onAvailable`). */
export interface AvailabilityListeners {
  /** Adds a listener; returns the function that removes it. After {@link clear}, adds nothing. */
  add(listener: () => void): () => void;
  /** Calls every listener; one that throws does not keep the others from hearing. */
  notify(): void;
  /** Removes every listener for good (the publisher closed). */
  clear(): void;
}

/**
 * The listeners of a publisher's `onAvailable`. `watch`, when given, starts listening to the client's "connected
 * again" signal: it is called with `notify` when the first listener is added, and the function it returns when
 * the last is removed or at `clear()`, so a client the publisher was given keeps no listener of it.
 * @throws ConfigurationError from `add` for a listener that is not a function.
 */
export function createAvailabilityListeners(
  watch?: (notify: () => void) => () => void,
): AvailabilityListeners {
  const listeners = new Set<() => void>();
  let unwatch: (() => void) | undefined;
  let cleared = false;
  const notify = (): void => {
    for (const listener of [...listeners]) {
      try {
        listener();
      } catch {
        // a listener's failure is its own; the others still hear
      }
    }
  };
  const stopWatching = (): void => {
    const stop = unwatch;
    unwatch = undefined;
    stop?.();
  };
  return {
    add(listener) {
      if (typeof listener !== 'function') throw new ConfigurationError('onAvailable needs a function');
      if (cleared) return () => {};
      if (listeners.size === 0 && watch !== undefined) unwatch = watch(notify);
      listeners.add(listener);
      return () => {
        if (listeners.delete(listener) && listeners.size === 0) stopWatching();
      };
    },
    notify,
    clear() {
      cleared = true;
      listeners.clear();
      stopWatching();
    },
  };
}
