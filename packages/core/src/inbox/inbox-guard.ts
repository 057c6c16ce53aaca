/**
 * Idempotent-consumer guard over an inbox table: runs `work` inside one database transaction together with the
 * processed mark, and skips it when the mark already exists. The SQL packages provide one
 * (e.g. `createPostgresInboxGuard`).
 */
export interface InboxGuard<TTx = unknown> {
  /** `true` when `work` ran and committed with the mark; `false` for a duplicate. */
  once(messageId: string, consumer: string, work: (tx: TTx) => Promise<void>): Promise<boolean>;
}
