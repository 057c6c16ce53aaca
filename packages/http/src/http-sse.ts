/** Default interval of SSE heartbeat comments, in ms. */
export const DEFAULT_HEARTBEAT_MS = 15_000;

const HEARTBEAT = ': heartbeat\n\n';
const CUT_RE = /[\r\n\0].*$/s;

/** The SSE `id:` of an item: its `position` when it is a string or a finite number. */
export function positionOf(item: unknown): string | undefined {
  if (typeof item !== 'object' || item === null) return undefined;
  const p = (item as { position?: unknown }).position;
  if (typeof p === 'string') return p;
  if (typeof p === 'number' && Number.isFinite(p)) return String(p);
  if (typeof p === 'bigint') return p.toString();
  return undefined;
}

/** One SSE event for an item. Ids are cut at the first line break so an item cannot inject fields. */
export function sseEvent(item: unknown, id: string | undefined): string {
  const data = `data: ${JSON.stringify(item) ?? 'null'}\n\n`;
  if (id === undefined) return data;
  const safe = id.includes('\n') || id.includes('\r') || id.includes('\0') ? id.replace(CUT_RE, '') : id;
  return `id: ${safe}\n${data}`;
}

/**
 * The SSE body of a stream: pulls one item at a time (a slow client holds the handler back instead of filling
 * a buffer), writes a heartbeat comment when no item came for `heartbeatMs`, and on a failure ends with one
 * `event: problem` carrying the problem details. Closing it (`return()`) closes the item iterator.
 */
export async function* sseBody(
  items: AsyncIterator<unknown>,
  first: IteratorResult<unknown> | undefined,
  options: {
    readonly heartbeatMs: number;
    readonly eventId: (item: unknown) => string | undefined;
    readonly problem: (error: unknown) => unknown;
  },
): AsyncGenerator<string, void, undefined> {
  let pending: Promise<IteratorResult<unknown>> | undefined;
  let timer: NodeJS.Timeout | undefined;
  // Resolves the wait for the current item with `undefined`: a heartbeat is due. One settle function per wait,
  // and no promise shared across items (a race per item against one long-lived tick piles reactions on it).
  let wake: ((result: IteratorResult<unknown> | undefined) => void) | undefined;
  // true when no item came since the last beat: an item resets it, so a heartbeat follows at most 2 intervals
  // after the last item
  let idle = true;
  const beat = () => {
    if (idle) wake?.(undefined);
    idle = true;
  };
  try {
    if (first !== undefined) {
      if (first.done) return;
      yield sseEvent(first.value, options.eventId(first.value));
    }
    timer = setInterval(beat, options.heartbeatMs);
    timer.unref();
    while (true) {
      pending ??= items.next();
      const step = pending;
      const result = await new Promise<IteratorResult<unknown> | undefined>((resolve, reject) => {
        wake = resolve;
        step.then(resolve, reject);
      });
      wake = undefined;
      if (result === undefined) {
        yield HEARTBEAT;
        continue;
      }
      pending = undefined;
      idle = false;
      if (result.done) return;
      yield sseEvent(result.value, options.eventId(result.value));
    }
  } catch (error) {
    pending = undefined;
    yield `event: problem\n${sseEvent(options.problem(error), undefined)}`;
  } finally {
    if (timer !== undefined) clearInterval(timer);
    // A step still running ends once the handler honours the aborted signal; do not wait for it here.
    const closing = items.return?.();
    if (pending === undefined) await closing?.catch(() => {});
    else closing?.catch(() => {});
  }
}
