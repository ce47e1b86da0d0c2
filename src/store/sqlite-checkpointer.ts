import { existsSync, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { SqliteDatabase } from './sqlite.ts';
import type {
  CheckpointThreadData,
  FromCheckpointThread,
  ToCheckpointThread,
} from './sqlite-checkpoint-worker.ts';

/** The compiled checkpoint thread beside this module; absent when running from the TypeScript sources. */
const THREAD_FILE = fileURLToPath(new URL('./sqlite-checkpoint-worker.js', import.meta.url));

/** How often the thread checkpoints, in milliseconds. */
const DEFAULT_EVERY_MS = 250;
/** WAL pages (4 KiB each) past which the thread has the log started over: 32 MiB. */
const DEFAULT_RESTART_AT_PAGES = 8192;
/** The writer's own automatic checkpoint (SQLite's default), restored when the thread stops. */
const WRITER_AUTOCHECKPOINT_PAGES = 1000;
/** The WAL file is cut back to this size when the log starts over. */
const JOURNAL_SIZE_LIMIT = 64 * 1024 * 1024;

/** A running checkpoint thread. */
export interface Checkpointer {
  /** The last checkpoint's WAL size and pages copied (for tests and diagnostics). */
  readonly last: { walPages: number; checkpointed: number } | undefined;
  /** Makes a last checkpoint and stops the thread; the writer checkpoints itself again. */
  stop(): Promise<void>;
}

/** Options of {@link startCheckpointer}. */
export interface CheckpointerOptions {
  everyMs?: number;
  /** WAL pages past which the log is started over (default 8192, 32 MiB). */
  restartAtPages?: number;
  /** Told when a checkpoint fails (the database stays correct: the WAL only grows until one succeeds). */
  onError?: (message: string) => void;
}

/** Whether a database's checkpoints can move to the thread: a file database, and the thread built. */
const threadCanCheckpoint = (db: SqliteDatabase, path: string): boolean =>
  path !== ':memory:' && !db.memory && existsSync(THREAD_FILE);

/**
 * Moves the WAL checkpoints of a file database off the writing connection: turns its automatic
 * checkpoint off and starts a thread that checkpoints on its own connection. Returns `undefined`
 * (and changes nothing) for `:memory:` or when the thread's compiled file is not there (running
 * from the TypeScript sources), where the writer goes on checkpointing itself.
 */
export function startCheckpointer(
  db: SqliteDatabase,
  path: string,
  options: CheckpointerOptions = {},
): Checkpointer | undefined {
  if (!threadCanCheckpoint(db, path)) return undefined;
  const worker = new Worker(THREAD_FILE, {
    workerData: {
      path: db.name,
      everyMs: options.everyMs ?? DEFAULT_EVERY_MS,
      restartAtPages: options.restartAtPages ?? DEFAULT_RESTART_AT_PAGES,
    } satisfies CheckpointThreadData,
  });
  worker.unref();
  db.pragma('wal_autocheckpoint = 0');
  db.pragma(`journal_size_limit = ${JOURNAL_SIZE_LIMIT}`);
  let last: Checkpointer['last'];
  let stopped: (() => void) | undefined;
  let running = true;
  const fallBack = () => {
    // The thread is gone: the writer checkpoints itself again.
    running = false;
    if (db.open) db.pragma(`wal_autocheckpoint = ${WRITER_AUTOCHECKPOINT_PAGES}`);
    stopped?.();
  };
  worker.on('message', (message: FromCheckpointThread) => {
    if (message.type === 'checkpoint')
      last = { walPages: message.walPages, checkpointed: message.checkpointed };
    else if (message.type === 'error') options.onError?.(message.message);
    else stopped?.();
  });
  worker.on('error', (err) => {
    options.onError?.(err.message);
    fallBack();
  });
  worker.on('exit', fallBack);
  return {
    get last() {
      return last;
    },
    async stop() {
      if (!running) return;
      running = false;
      worker.ref();
      await new Promise<void>((resolve) => {
        stopped = resolve;
        worker.postMessage({ type: 'stop' } satisfies ToCheckpointThread);
      });
      worker.removeAllListeners('exit');
      await worker.terminate();
      if (db.open) db.pragma(`wal_autocheckpoint = ${WRITER_AUTOCHECKPOINT_PAGES}`);
    },
  };
}

/**
 * WAL bytes past which {@link checkpointWhenWritten} starts the thread: half of what the writer
 * lets the WAL reach before it checkpoints itself.
 */
const START_AT_WAL_BYTES = 2 * 1024 * 1024;

/**
 * {@link startCheckpointer} once the database is being written: checks the WAL file's size every
 * second and starts the thread when it passes 2 MiB. An idle or lightly used process never pays
 * for the thread (a worker costs several megabytes of memory); a busy one gets it within a
 * second. Stop it with the returned function (which also stops the thread, if it started).
 */
export function checkpointWhenWritten(
  db: SqliteDatabase,
  path: string,
  options: CheckpointerOptions & { checkEveryMs?: number } = {},
): { stop(): Promise<void>; readonly started: Checkpointer | undefined } {
  if (!threadCanCheckpoint(db, path)) return { stop: async () => undefined, started: undefined };
  let started: Checkpointer | undefined;
  const wal = `${db.name}-wal`;
  const timer = setInterval(() => {
    let size = 0;
    try {
      size = statSync(wal).size;
    } catch {
      return; // no WAL yet
    }
    if (size < START_AT_WAL_BYTES || !db.open) return;
    clearInterval(timer);
    started = startCheckpointer(db, path, options);
  }, options.checkEveryMs ?? 1000);
  timer.unref();
  return {
    async stop() {
      clearInterval(timer);
      await started?.stop();
    },
    get started() {
      return started;
    },
  };
}
