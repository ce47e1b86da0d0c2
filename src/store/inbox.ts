import { ClawmeshError } from '../core/errors.ts';
import { createMemoryInboxStore } from './inbox-memory.ts';
import { createSqliteInboxStore } from './inbox-sqlite.ts';
import type { InboxStore } from './inbox-types.ts';

export type { MemoryInboxOptions } from './inbox-memory.ts';
export { createMemoryInboxStore } from './inbox-memory.ts';
export { createSqliteInboxStore } from './inbox-sqlite.ts';
export type { InboxEntry, InboxQuery, InboxReply, InboxStatus, InboxStore } from './inbox-types.ts';
export { INBOX_STATUSES } from './inbox-types.ts';

/** Options of {@link createInboxStore}. */
export interface InboxStoreOptions {
  kind: 'memory' | 'sqlite';
  /** The SQLite file (the conversation store's may be shared). */
  path?: string;
}

/**
 * Creates the channels' inbox of one kind.
 *
 * @example
 * const inbox = createInboxStore({ kind: 'sqlite', path: './data/clawmesh.db' });
 */
export function createInboxStore(options: InboxStoreOptions): InboxStore {
  switch (options.kind) {
    case 'memory':
      return createMemoryInboxStore();
    case 'sqlite':
      if (!options.path) throw new ClawmeshError('INVALID_ARGUMENT', 'an SQLite inbox needs a path');
      return createSqliteInboxStore({ path: options.path });
    default:
      throw new ClawmeshError(
        'INVALID_ARGUMENT',
        `unknown inbox kind "${String((options as { kind: unknown }).kind)}" (expected memory or sqlite)`,
      );
  }
}
