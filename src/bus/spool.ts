import {
  closeSync,
  ftruncateSync,
  mkdirSync,
  openSync,
  readFileSync,
  rmSync,
  statSync,
  utimesSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import type { Logger } from '../observability/logger.ts';
import type { BusEvent } from './types.ts';

/**
 * A file where the publish buffer keeps the events the broker has not taken yet, so that a
 * process that stops or is killed while its broker is down does not lose them: the next process
 * of the same roles started in the same directory sends them. One JSON event per line, written
 * before `publish` returns (in the page cache: it survives the process, not a power cut).
 */
export interface EventSpool {
  /** The file. */
  readonly path: string;
  /** Events an earlier process left in the file, oldest first, read when it was opened. */
  readonly recovered: BusEvent[];
  /** Appends events; false when the file cannot be written (the spool is then closed). */
  append(events: readonly BusEvent[]): boolean;
  /** Empties the file: every event in it was taken by the broker. */
  clear(): void;
  /** Releases the file; it is removed when `keep` is false. */
  close(keep: boolean): void;
}

/** Spool files held by this process: a second bus here must not take the first one's. */
const heldHere = new Set<string>();

/** Spool files of one name tried in a directory (`<name>.jsonl`, `<name>-2.jsonl`, …). */
const MAX_SLOTS = 16;

function alive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** How often a holder touches its lock, and how long an untouched lock counts as held. */
const HEARTBEAT_MS = 10_000;
const STALE_AFTER_MS = 3 * HEARTBEAT_MS;

/** What a lock file says of its holder: `<host> <pid>`. */
const HOLDER = `${hostname()} ${process.pid}\n`;

/**
 * Takes the lock of a spool file: a `.lock` file beside it naming the host and process, touched
 * while held. A lock is stale, and taken over, when it was not touched for
 * {@link STALE_AFTER_MS} (its holder is gone, wherever it ran: a shared volume), or when it
 * names this host and a process that is gone or has this process's id (an earlier life of a
 * container, whose processes all start as the same pid).
 */
function takeLock(lockPath: string): boolean {
  if (heldHere.has(lockPath)) return false;
  try {
    writeFileSync(lockPath, HOLDER, { flag: 'wx' });
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  }
  const [host, pidText] = readFileSync(lockPath, 'utf8').trim().split(' ');
  const pid = Number.parseInt(pidText ?? '', 10);
  const untouched = Date.now() - statSync(lockPath).mtimeMs > STALE_AFTER_MS;
  const gone = host === hostname() && (pid === process.pid || !alive(pid));
  if (!untouched && !gone) return false;
  writeFileSync(lockPath, HOLDER);
  return true;
}

/** The events of a spool file; lines that are not an event are counted, not kept. */
function readEvents(fd: number): { events: BusEvent[]; bad: number } {
  const events: BusEvent[] = [];
  let bad = 0;
  for (const line of readFileSync(fd, 'utf8').split('\n')) {
    if (line.trim() === '') continue;
    try {
      const event = JSON.parse(line) as BusEvent;
      if (typeof event?.id === 'string' && typeof event.type === 'string') events.push(event);
      else bad += 1;
    } catch {
      bad += 1; // a line cut by a crash mid-write
    }
  }
  return { events, bad };
}

/**
 * Opens the spool file `<dir>/<name>.jsonl` (or the first free `<name>-N.jsonl` when a live
 * process of the same name holds it), creating the directory, and reads what an earlier
 * process left in it. Returns undefined, with a warning, when the directory cannot be used:
 * the buffer then keeps events in memory only.
 */
export function openEventSpool(dir: string, name: string, logger: Logger): EventSpool | undefined {
  let path: string | undefined;
  let lockPath = '';
  try {
    mkdirSync(dir, { recursive: true });
    for (let slot = 1; slot <= MAX_SLOTS && !path; slot++) {
      const file = join(dir, slot === 1 ? `${name}.jsonl` : `${name}-${slot}.jsonl`);
      if (takeLock(`${file}.lock`)) {
        path = file;
        lockPath = `${file}.lock`;
      }
    }
  } catch (err) {
    logger.warn(
      { err: (err as Error).message, dir },
      'the event spool directory cannot be used: events the broker cannot take are kept in memory only (set bus.spoolDir)',
    );
    return undefined;
  }
  if (!path) {
    logger.warn(
      { dir, name },
      `${MAX_SLOTS} live processes hold spool files of this name: events are kept in memory only`,
    );
    return undefined;
  }
  let fd: number | undefined;
  let recovered: BusEvent[] = [];
  try {
    fd = openSync(path, 'a+');
    const { events, bad } = readEvents(fd);
    recovered = events;
    if (bad > 0) logger.warn({ path, skipped: bad }, 'skipped spool lines that are not events');
  } catch (err) {
    if (fd !== undefined) closeSync(fd);
    rmSync(lockPath, { force: true });
    logger.warn(
      { err: (err as Error).message, path },
      'the event spool cannot be opened: events the broker cannot take are kept in memory only',
    );
    return undefined;
  }
  heldHere.add(lockPath);
  const file = path;
  let open = true;
  const heartbeat = setInterval(() => {
    const now = new Date();
    try {
      utimesSync(lockPath, now, now);
    } catch {
      // The next touch tries again; an untouched lock only lets another process take the file.
    }
  }, HEARTBEAT_MS);
  heartbeat.unref();
  const release = (keep: boolean) => {
    if (!open) return;
    open = false;
    clearInterval(heartbeat);
    closeSync(fd as number);
    if (!keep) rmSync(file, { force: true });
    rmSync(lockPath, { force: true });
    heldHere.delete(lockPath);
  };
  return {
    path: file,
    recovered,
    append(events) {
      if (!open) return false;
      let text = '';
      for (const event of events) text += `${JSON.stringify(event)}\n`;
      try {
        writeSync(fd as number, text);
        return true;
      } catch (err) {
        logger.error(
          { err: (err as Error).message, path: file },
          'cannot write the event spool: events the broker cannot take are kept in memory only',
        );
        release(true);
        return false;
      }
    },
    clear() {
      if (open) ftruncateSync(fd as number, 0);
    },
    close: release,
  };
}
