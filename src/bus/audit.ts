import { createWriteStream, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import type { Bus, Subscription } from './types.ts';

/** The audit consumer: one JSON line per event, appended to a file. */
export interface AuditLog {
  readonly path: string;
  close(): Promise<void>;
}

/**
 * Subscribes the audit log to every topic (group `audit`) and appends each event as one JSON
 * line. It is an ordinary consumer: the turn never waits for it.
 */
export async function startAuditLog(bus: Bus, path: string): Promise<AuditLog> {
  mkdirSync(dirname(path), { recursive: true });
  const stream = createWriteStream(path, { flags: 'a' });
  // Lines of the events handled in one tick go out in one write, and share one acknowledgement.
  let lines: string[] = [];
  let written: Promise<void> | undefined;
  const flush = (done: (err?: Error | null) => void) => {
    const chunk = lines.join('');
    lines = [];
    written = undefined;
    stream.write(chunk, done);
  };
  const subscription: Subscription = await bus.subscribe('*', 'audit', (event) => {
    lines.push(`${JSON.stringify(event)}\n`);
    written ??= new Promise<void>((resolve, reject) => {
      setImmediate(flush, (err?: Error | null) => (err ? reject(err) : resolve()));
    });
    return written;
  });
  return {
    path,
    async close() {
      await subscription.close();
      await new Promise<void>((resolve) => stream.end(resolve));
    },
  };
}
