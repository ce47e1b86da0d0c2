/**
 * The checkpoint thread of an SQLite database in WAL mode: its own connection copies committed
 * pages from the WAL into the database file every few hundred milliseconds (a `PASSIVE`
 * checkpoint: it never blocks the writer). The writing connection then never checkpoints itself,
 * which cost about half of each commit on the turn path (page copies and an fsync).
 */
import { parentPort, workerData } from 'node:worker_threads';
import Database from 'better-sqlite3';

/** What the thread is started with. */
export interface CheckpointThreadData {
  path: string;
  everyMs: number;
  /** WAL pages past which the log is started over. */
  restartAtPages: number;
}

/** Messages to the thread: `stop` makes a last checkpoint, closes the connection and answers. */
export type ToCheckpointThread = { type: 'stop' };

/** What the thread tells: each checkpoint's WAL size and pages copied, or that it stopped. */
export type FromCheckpointThread =
  | { type: 'checkpoint'; walPages: number; checkpointed: number; busy: boolean }
  | { type: 'stopped' }
  | { type: 'error'; message: string };

const port = parentPort;
if (port) {
  const { path, everyMs, restartAtPages } = workerData as CheckpointThreadData;
  let db: Database.Database | undefined;
  const report = (message: FromCheckpointThread) => port.postMessage(message);
  const run = (mode: 'PASSIVE' | 'RESTART') => {
    const [row] = db!.pragma(`wal_checkpoint(${mode})`) as {
      busy: number;
      log: number;
      checkpointed: number;
    }[];
    return row ?? { busy: 1, log: -1, checkpointed: -1 };
  };
  const checkpoint = () => {
    try {
      db ??= new Database(path, { fileMustExist: true });
      db.pragma('busy_timeout = 1000');
      let row = run('PASSIVE');
      // Under steady writes the WAL is never all copied at the moment a write begins, so it is
      // never started over and only grows. Once it is big, a RESTART checkpoint (right after the
      // passive one: little left to copy) makes the next write start it over. It holds writers
      // back while it runs, so it waits for them at most a few milliseconds, and tries again on
      // the next tick when they are busy.
      if (row.log >= restartAtPages) {
        db.pragma('busy_timeout = 5');
        const restarted = run('RESTART');
        if (restarted.busy === 0) row = restarted;
      }
      report({ type: 'checkpoint', walPages: row.log, checkpointed: row.checkpointed, busy: row.busy === 1 });
    } catch (err) {
      report({ type: 'error', message: err instanceof Error ? err.message : String(err) });
    }
  };
  const timer = setInterval(checkpoint, everyMs);
  port.on('message', (message: ToCheckpointThread) => {
    if (message.type !== 'stop') return;
    clearInterval(timer);
    checkpoint();
    db?.close();
    report({ type: 'stopped' });
    port.close();
  });
}
