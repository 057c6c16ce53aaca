import { ConfigurationError } from '../errors/cqrs-error.ts';

/**
 * Port of the inbox (consumer dedupe) table: one row per (message source, message id, consumer), written in the
 * consumer's transaction so the handler's effects and the mark commit together.
 * @typeParam TTx - the transaction handle of the consumer's driver.
 */
export interface InboxStore<TTx = unknown> {
  /**
   * Inserts the mark in `tx`; `false` when it already exists (a duplicate). A concurrent insert of the same
   * mark blocks until the other transaction ends. `source` is the CloudEvents `source` of the message (with
   * `messageId`, its identity); `''` (the default) for messages without one.
   */
  markProcessed(tx: TTx, messageId: string, consumer: string, now: number, source?: string): Promise<boolean>;
  /** Retention: deletes marks processed before `processedBefore` (epoch ms); returns how many. */
  purge(processedBefore: number): Promise<number>;
}

/** Outcome of {@link processOnce}. */
export type ProcessOnceResult<TResult> =
  | { readonly status: 'processed'; readonly result: TResult }
  | { readonly status: 'duplicate' };

const MAX_ID = 255;

/**
 * Runs `fn` at most once per (source, messageId, consumer): marks the message in `tx` first, skips duplicates,
 * and relies on the caller committing `tx` after it returns (or rolling back on a throw, which un-marks it).
 * @throws ConfigurationError for an empty or over-long id or consumer, or an over-long source.
 */
export async function processOnce<TTx, TResult>(
  store: InboxStore<TTx>,
  tx: TTx,
  messageId: string,
  consumer: string,
  fn: (tx: TTx) => Promise<TResult> | TResult,
  source = '',
): Promise<ProcessOnceResult<TResult>> {
  if (typeof messageId !== 'string' || messageId.length === 0 || messageId.length > MAX_ID) {
    throw new ConfigurationError(`inbox: messageId must be 1..${MAX_ID} chars`);
  }
  if (typeof consumer !== 'string' || consumer.length === 0 || consumer.length > MAX_ID) {
    throw new ConfigurationError(`inbox: consumer must be 1..${MAX_ID} chars`);
  }
  if (typeof source !== 'string' || source.length > MAX_ID) {
    throw new ConfigurationError(`inbox: source must be 0..${MAX_ID} chars`);
  }
  const marked =
    source === ''
      ? await store.markProcessed(tx, messageId, consumer, Date.now())
      : await store.markProcessed(tx, messageId, consumer, Date.now(), source);
  if (!marked) return { status: 'duplicate' };
  return { status: 'processed', result: await fn(tx) };
}
