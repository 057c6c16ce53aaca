/** Exponential backoff with an optional full jitter, shared by the retry behavior, the relay and consumers. */
export interface BackoffOptions {
  /** Delay before the second attempt (before jitter), in ms. @default 100 */
  readonly initialMs?: number;
  /** Upper bound of a delay, in ms. @default 10000 */
  readonly maxMs?: number;
  /** Growth per attempt. @default 2 */
  readonly factor?: number;
  /** `full` picks a random delay in [0, computed]; `none` waits exactly. @default 'full' */
  readonly jitter?: 'full' | 'none';
}

/** Delay before attempt `attempt + 1`, in ms. */
export function backoffDelay(
  attempt: number,
  backoff: BackoffOptions = {},
  random: () => number = Math.random,
): number {
  const initial = backoff.initialMs ?? 100;
  const max = backoff.maxMs ?? 10_000;
  const factor = backoff.factor ?? 2;
  const computed = Math.min(max, initial * factor ** (attempt - 1));
  return backoff.jitter === 'none' ? computed : Math.floor(random() * computed);
}
