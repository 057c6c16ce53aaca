import { CancelledError } from '../errors/cqrs-error.ts';

/** A signal that never aborts; shared so that nothing allocates one per call. */
export const NEVER_ABORTED: AbortSignal = new AbortController().signal;

/** Waits `ms`, or rejects with a CancelledError when the signal aborts first. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(new CancelledError('wait', { cause: signal.reason }));
      return;
    }
    const onAbort = () => {
      clearTimeout(timer);
      reject(new CancelledError('wait', { cause: signal?.reason }));
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
