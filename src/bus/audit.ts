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
  const subscription: Subscription = await bus.subscribe('*', 'audit', (event) => {
    return new Promise<void>((resolve, reject) => {
      stream.write(`${JSON.stringify(event)}\n`, (err) => (err ? reject(err) : resolve()));
    });
  });
  return {
    path,
    async close() {
      await subscription.close();
      await new Promise<void>((resolve) => stream.end(resolve));
    },
  };
}
