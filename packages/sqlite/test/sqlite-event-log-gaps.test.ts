import { type ChildProcess, fork } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { fileURLToPath } from 'node:url';
import { createSqliteEventStore, migrate } from '@cqrs-ts/sqlite';
import { describeEventLogGapContract } from '@cqrs-ts/testing/contracts';

const fixture = fileURLToPath(new URL('./fixtures/log-writer.ts', import.meta.url));

describeEventLogGapContract(
  'sqlite',
  async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cqrs-sqlite-gaps-'));
    const file = join(dir, 'log.db');
    const db = new DatabaseSync(file);
    db.exec('PRAGMA journal_mode = WAL; PRAGMA busy_timeout = 30000;');
    const tables = { outbox: 'gap_log' };
    migrate(db, { tables });
    const store = createSqliteEventStore({ database: db, tables });
    // each writer is a process with a connection of its own: SQLite makes them take turns on the write lock
    const replies = new Map<number, { resolve: () => void; reject: (e: Error) => void }>();
    let sent = 0;
    const writers: ChildProcess[] = await Promise.all(
      Array.from(
        { length: 8 },
        () =>
          new Promise<ChildProcess>((resolve, reject) => {
            const child = fork(fixture, [file, tables.outbox], {
              execArgv: ['--conditions=@cqrs-ts/source'],
              serialization: 'advanced',
              stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
            });
            child.on('error', reject);
            child.on('message', (m: { n: number; error?: string }) => {
              if (m.n === -1) return resolve(child);
              const reply = replies.get(m.n);
              replies.delete(m.n);
              if (m.error === undefined) reply?.resolve();
              else reply?.reject(new Error(m.error));
            });
          }),
      ),
    );
    return {
      log: store,
      write: (writer, batch) =>
        new Promise<void>((resolve, reject) => {
          const n = sent++;
          replies.set(n, { resolve, reject });
          writers[writer]!.send({ n, ...batch, events: [...batch.events] });
        }),
      async naiveRead(afterSeq, limit) {
        return (
          db
            .prepare('SELECT id, seq FROM gap_log WHERE seq > ? ORDER BY seq LIMIT ?')
            .all(afterSeq, limit) as {
            id: string;
            seq: number;
          }[]
        ).map((r) => ({ id: r.id, seq: Number(r.seq) }));
      },
      async close() {
        await Promise.all(
          writers.map(
            (w) =>
              new Promise<void>((resolve) => {
                w.once('exit', () => resolve());
                w.send('exit');
              }),
          ),
        );
        db.close();
        rmSync(dir, { recursive: true, force: true });
      },
    };
  },
  {
    // one writer at a time: fewer, larger transactions keep the run short
    maxCommitDelayMs: 1,
    maxBatch: 48,
    report: (f) => console.log(`sqlite gap test: ${JSON.stringify(f)}`),
  },
);
