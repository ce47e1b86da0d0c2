import {
  closeSync,
  createWriteStream,
  fstatSync,
  mkdirSync,
  openSync,
  readSync,
  type WriteStream,
} from 'node:fs';
import { dirname } from 'node:path';
import { ClawmeshError } from '../core/errors.ts';
import type { Logger } from '../observability/logger.ts';
import type { Bus, Subscription } from './types.ts';

/**
 * How long lines wait to be written together. One write a few milliseconds rather than one a
 * tick keeps the thread pool's system calls few under load; the turn never waits for them.
 */
const FLUSH_EVERY_MS = 5;

/** The audit consumer: one JSON line per event, appended to a file. */
export interface AuditLog {
  readonly path: string;
  /** Stops consuming, writes what is pending and closes the file. */
  close(): Promise<void>;
}

/**
 * Subscribes the audit log to every topic (group `audit`) and appends each event as one JSON
 * line. It is an ordinary consumer: the turn never waits for it. The lines of the events
 * handled within a few milliseconds go out in one write and share one acknowledgement.
 */
export async function startAuditLog(bus: Bus, path: string, logger?: Logger): Promise<AuditLog> {
  // A write that fails later (a full disk) fails its events' handler, which the bus retries
  // and then dead-letters; it must not end the process as an unhandled 'error' event.
  const onError = (err: Error) => logger?.error({ err, path }, 'the audit file cannot be written');
  let stream = (await openAuditFile(path)).on('error', onError);
  let lines: string[] = [];
  let batch: { promise: Promise<void>; resolve: () => void; reject: (err: Error) => void } | undefined;

  const flush = () => {
    const pending = batch;
    if (!pending) return;
    const chunk = lines.join('');
    lines = [];
    batch = undefined;
    // A failed write destroys the stream: open the file again, so the audit log resumes once
    // the disk has room, on a new line if the failure cut the last one short.
    let prefix = '';
    if (stream.destroyed) {
      stream = createWriteStream(path, { flags: 'a' }).on('error', onError);
      if (!endsWithNewline(path)) prefix = '\n';
    }
    stream.write(prefix + chunk, (err) => (err ? pending.reject(err) : pending.resolve()));
  };

  const subscription: Subscription = await bus.subscribe('*', 'audit', (event) => {
    lines.push(`${JSON.stringify(event)}\n`);
    if (!batch) {
      let resolve!: () => void;
      let reject!: (err: Error) => void;
      const promise = new Promise<void>((res, rej) => {
        resolve = res;
        reject = rej;
      });
      batch = { promise, resolve, reject };
      setTimeout(flush, FLUSH_EVERY_MS);
    }
    return batch.promise;
  });

  return {
    path,
    async close() {
      await subscription.close();
      flush();
      if (stream.destroyed) return;
      await new Promise<void>((resolve) => stream.end(resolve));
    },
  };
}

/** Opens the audit file for appending, failing with a message that names it (not at the first event). */
async function openAuditFile(path: string): Promise<WriteStream> {
  const fail = (err: unknown) =>
    new ClawmeshError(
      'UNAVAILABLE',
      `the audit file ${path} cannot be opened: ${(err as Error).message} (set audit.path, or CLAWMESH_AUDIT__ENABLED=false)`,
      { cause: err },
    );
  try {
    mkdirSync(dirname(path), { recursive: true });
  } catch (err) {
    throw fail(err);
  }
  const stream = createWriteStream(path, { flags: 'a' });
  await new Promise<void>((resolve, reject) => {
    stream.once('open', () => {
      stream.off('error', reject);
      resolve();
    });
    stream.once('error', reject);
  }).catch((err: unknown) => {
    throw fail(err);
  });
  return stream;
}

/** Whether the file is empty, missing or ends with a newline (best effort: true when unreadable). */
function endsWithNewline(path: string): boolean {
  let fd: number | undefined;
  try {
    fd = openSync(path, 'r');
    const { size } = fstatSync(fd);
    if (size === 0) return true;
    const last = Buffer.alloc(1);
    readSync(fd, last, 0, 1, size - 1);
    return last[0] === 0x0a;
  } catch {
    return true;
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}
