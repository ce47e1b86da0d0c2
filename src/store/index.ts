import { ClawmeshError } from '../core/errors.ts';
import { createMemoryConversationStore, createMemoryDedupeStore } from './memory.ts';
import { DEFAULT_SQLITE_PATH, openSqlite } from './sqlite.ts';
import { createSqliteConversationStore } from './sqlite-conversations.ts';
import { createSqliteDedupeStore } from './sqlite-dedupe.ts';
import { canThreadSqlite, createThreadedSqliteStores } from './sqlite-thread/client.ts';
import type { ConversationStore, DedupeStore } from './types.ts';

// Types
export type { MemoryDedupeOptions } from './memory.ts';
// Adapters
export { createMemoryConversationStore, createMemoryDedupeStore } from './memory.ts';
export type { SqliteDatabase, SqliteSource } from './sqlite.ts';
export { DEFAULT_SQLITE_PATH, openSqlite } from './sqlite.ts';
export { createSqliteConversationStore } from './sqlite-conversations.ts';
export type { SqliteDedupeOptions } from './sqlite-dedupe.ts';
export { createSqliteDedupeStore } from './sqlite-dedupe.ts';
export type {
  AppendOptions,
  ClaimResult,
  ConversationRecord,
  ConversationStore,
  DedupeStore,
  StoredMessage,
} from './types.ts';

/** Options of {@link createStores}. */
export interface StoreOptions {
  /** Which adapter backs both stores. */
  kind: 'memory' | 'sqlite';
  /** The SQLite database file (default `./data/clawmesh.db`); `:memory:` for a private one. */
  path?: string;
  /**
   * Run SQLite in a worker thread (default: no). The event loop then never waits on the
   * database, a checkpoint's fsync included; each call costs a message each way instead, which
   * on a two-core machine lowers throughput (bench/turn: about 2,100 turns/s against 2,800).
   * Needs the built package (the thread's entry is JavaScript).
   */
  thread?: boolean;
}

/** The stores of one process, closed together. */
export interface Stores {
  conversations: ConversationStore;
  dedupe: DedupeStore;
  /** Closes both stores and, for SQLite, their shared database. */
  close(): Promise<void>;
}

/**
 * Creates the conversation and dedupe stores of one kind. For SQLite both share one database
 * connection at `path`.
 *
 * @example
 * const stores = createStores({ kind: 'sqlite', path: './data/clawmesh.db' });
 * await stores.conversations.ensure({ id, agentId, channel, peer });
 * await stores.close();
 */
export function createStores(options: StoreOptions): Stores {
  const kind: string = options.kind;
  switch (options.kind) {
    case 'memory': {
      const conversations = createMemoryConversationStore();
      const dedupe = createMemoryDedupeStore();
      return { conversations, dedupe, close: () => closeAll(conversations, dedupe) };
    }
    case 'sqlite': {
      if (options.thread) {
        if (!canThreadSqlite)
          throw new ClawmeshError('INVALID_ARGUMENT', 'store.thread needs the built package (dist/)');
        return createThreadedSqliteStores(options.path ?? DEFAULT_SQLITE_PATH);
      }
      const db = openSqlite(options.path ?? DEFAULT_SQLITE_PATH);
      try {
        const conversations = createSqliteConversationStore({ db });
        const dedupe = createSqliteDedupeStore({ db });
        const close = async () => {
          await closeAll(conversations, dedupe);
          if (db.open) db.close();
        };
        return { conversations, dedupe, close };
      } catch (err) {
        db.close();
        throw err;
      }
    }
    default:
      throw new ClawmeshError(
        'INVALID_ARGUMENT',
        `unknown store kind "${kind}" (expected memory or sqlite)`,
        {
          details: { kind },
        },
      );
  }
}

async function closeAll(...stores: { close(): Promise<void> }[]): Promise<void> {
  await Promise.all(stores.map((store) => store.close()));
}
