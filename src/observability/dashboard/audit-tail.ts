import { type FileHandle, open } from 'node:fs/promises';
import type { AuditEvent } from './views.ts';

/** Options of {@link readAuditTail}. */
export interface AuditTailOptions {
  /** Bytes read per step from the end (default 64 KiB). */
  chunkBytes?: number;
  /** The most bytes read in all, so a file of huge or bad lines costs a bounded read (default 16 MiB). */
  maxBytes?: number;
}

/** What {@link readAuditTail} found: the newest events first, and how many lines it skipped. */
export interface AuditTail {
  events: AuditEvent[];
  skipped: number;
  /** Whether the file exists. */
  exists: boolean;
}

const NEWLINE = 0x0a;

/**
 * The newest `limit` events of a JSON-lines audit file, newest first. The file is read
 * backwards in chunks, so the cost follows the lines returned, not the file's size. Lines that
 * are not a JSON object with a string `type` (malformed, or cut by a write in progress) are
 * skipped and counted. A missing file is an empty tail.
 */
export async function readAuditTail(
  path: string,
  limit: number,
  options: AuditTailOptions = {},
): Promise<AuditTail> {
  let handle: FileHandle;
  try {
    handle = await open(path, 'r');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { events: [], skipped: 0, exists: false };
    throw err;
  }
  const events: AuditEvent[] = [];
  let skipped = 0;
  try {
    const { size } = await handle.stat();
    const lines = linesFromEnd(handle, size, options.chunkBytes ?? 64 * 1024, options.maxBytes ?? 16 << 20);
    for await (const line of lines) {
      const event = parseEvent(line);
      if (event) events.push(event);
      else skipped++;
      if (events.length >= limit) break;
    }
  } finally {
    await handle.close();
  }
  return { events, skipped, exists: true };
}

/** The file's non-empty lines, last first (split on bytes: `\n` never occurs inside UTF-8 sequences). */
async function* linesFromEnd(
  handle: FileHandle,
  size: number,
  chunkBytes: number,
  maxBytes: number,
): AsyncGenerator<Buffer> {
  let position = size;
  let carry = Buffer.alloc(0);
  while (position > 0 && size - position < maxBytes) {
    const length = Math.min(chunkBytes, position);
    position -= length;
    const chunk = Buffer.allocUnsafe(length);
    let filled = 0;
    while (filled < length) {
      const { bytesRead } = await handle.read(chunk, filled, length - filled, position + filled);
      if (bytesRead === 0) break;
      filled += bytesRead;
    }
    const buffer =
      carry.length > 0 ? Buffer.concat([chunk.subarray(0, filled), carry]) : chunk.subarray(0, filled);
    let end = buffer.length;
    for (let at = buffer.lastIndexOf(NEWLINE, end - 1); at >= 0; at = buffer.lastIndexOf(NEWLINE, end - 1)) {
      if (at + 1 < end) yield buffer.subarray(at + 1, end);
      end = at;
      if (end === 0) break;
    }
    carry = buffer.subarray(0, end);
  }
  // The file's first line; a line cut at the read limit is left out.
  if (position === 0 && carry.length > 0) yield carry;
}

function parseEvent(line: Buffer): AuditEvent | undefined {
  const text = line.toString('utf8').trim();
  if (text.length === 0 || text[0] !== '{') return undefined;
  try {
    const value = JSON.parse(text) as unknown;
    if (typeof value !== 'object' || value === null || Array.isArray(value)) return undefined;
    return typeof (value as { type?: unknown }).type === 'string' ? (value as AuditEvent) : undefined;
  } catch {
    return undefined;
  }
}
