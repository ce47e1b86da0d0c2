import { createRequire } from 'node:module';
import type { Pool } from 'pg';
import type { RedisClientType } from 'redis';
import { ClawmeshError } from '../core/errors.ts';
import { withDefaultPostgresUser } from '../core/postgres-user.ts';
import { createMemoryTurnLease } from './lease-memory.ts';
import { createRedisTurnLease, type RedisLeaseClient } from './lease-redis.ts';
import type { LeaseDefaults, TurnLease } from './lease-types.ts';
import { createMemoryConversationStore, createMemoryDedupeStore } from './memory.ts';
import { createPostgresConversationStore } from './postgres-conversations.ts';
import { createPostgresDedupeStore } from './postgres-dedupe.ts';
import { createRedisConversationStore } from './redis-conversations.ts';
import { createRedisDedupeStore } from './redis-dedupe.ts';
import { DEFAULT_SQLITE_PATH, openSqlite } from './sqlite.ts';
import { checkpointWhenWritten } from './sqlite-checkpointer.ts';
import { createSqliteConversationStore } from './sqlite-conversations.ts';
import { createSqliteDedupeStore } from './sqlite-dedupe.ts';
import { canThreadSqlite, createThreadedSqliteStores } from './sqlite-thread/client.ts';
import type { ConversationStore, DedupeStore } from './types.ts';

// Adapters
export { createMemoryTurnLease } from './lease-memory.ts';
export type { RedisLeaseClient, RedisTurnLeaseOptions } from './lease-redis.ts';
export { createRedisTurnLease } from './lease-redis.ts';
// Types
export type { AcquireOptions, LeaseDefaults, LeaseHandle, TurnLease } from './lease-types.ts';
export type { MemoryDedupeOptions } from './memory.ts';
export { createMemoryConversationStore, createMemoryDedupeStore } from './memory.ts';
export type { PostgresLocation } from './postgres-common.ts';
export type { PostgresConversationOptions } from './postgres-conversations.ts';
export { createPostgresConversationStore } from './postgres-conversations.ts';
export type { PostgresDedupeOptions } from './postgres-dedupe.ts';
export { createPostgresDedupeStore } from './postgres-dedupe.ts';
export type { RedisConversationOptions } from './redis-conversations.ts';
export { createRedisConversationStore } from './redis-conversations.ts';
export type { RedisDedupeOptions } from './redis-dedupe.ts';
export { createRedisDedupeStore } from './redis-dedupe.ts';
export type { RedisCommandClient } from './redis-script.ts';
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
  kind: 'memory' | 'sqlite' | 'redis' | 'postgres';
  /** The SQLite database file (default `./data/clawmesh.db`); `:memory:` for a private one. */
  path?: string;
  /**
   * Run SQLite in a worker thread (default: no). The event loop then never waits on the
   * database, a checkpoint's fsync included; each call costs a message each way instead, which
   * on a two-core machine lowers throughput (bench/turn: about 2,100 turns/s against 2,800).
   * Needs the built package (the thread's entry is JavaScript).
   */
  thread?: boolean;
  /**
   * For `redis`: a node-redis v5 client, connected or connecting (left open by `close()`), or a
   * URL such as `redis://127.0.0.1:6379` (a client is made, and closed by `close()`).
   */
  redis?: RedisCommandSource | string;
  /** For `redis`: prepended to every key (default `clawmesh:`). */
  prefix?: string;
  /**
   * For `postgres`: a `pg` Pool (left open by `close()`), or a connection string such as
   * `postgres://user@host:5432/db` (a pool is made, and ended by `close()`).
   */
  postgres?: Pool | string;
  /** For `postgres`: the schema of the tables, created when missing (default `public`). */
  schema?: string;
  /** For `postgres`: prepended to each table name (default `clawmesh_`). */
  tablePrefix?: string;
}

/** A Redis client as the stores take it: anything with node-redis v5's `sendCommand`. */
type RedisCommandSource = Pick<RedisClientType, 'sendCommand'>;

/** The stores of one process, closed together. */
export interface Stores {
  conversations: ConversationStore;
  dedupe: DedupeStore;
  /** Closes both stores and, for SQLite, their shared database; a client or pool made from a URL too. */
  close(): Promise<void>;
}

/**
 * Creates the conversation and dedupe stores of one kind. For SQLite both share one database
 * connection at `path`; for Redis and PostgreSQL, one client or pool. Creating never waits on
 * the network: a client made from a URL connects in the background and its first calls queue
 * until it is ready, so check `conversations.ping()` before serving.
 *
 * @example
 * const stores = createStores({ kind: 'sqlite', path: './data/clawmesh.db' });
 * await stores.conversations.ensure({ id, agentId, channel, peer });
 * await stores.close();
 *
 * @example
 * const stores = createStores({ kind: 'redis', redis: process.env.REDIS_URL, prefix: 'clawmesh:' });
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
      const path = options.path ?? DEFAULT_SQLITE_PATH;
      const db = openSqlite(path);
      try {
        const conversations = createSqliteConversationStore({ db });
        const dedupe = createSqliteDedupeStore({ db });
        // Once the database is being written, WAL checkpoints run on a thread of their own,
        // not in the turns' commits.
        const checkpointer = checkpointWhenWritten(db, path);
        const close = async () => {
          await closeAll(conversations, dedupe);
          await checkpointer.stop();
          if (db.open) db.close();
        };
        return { conversations, dedupe, close };
      } catch (err) {
        db.close();
        throw err;
      }
    }
    case 'redis': {
      const { client, close: closeClient } = redisFrom(options.redis, 'store.redis');
      const prefix = options.prefix;
      const conversations = createRedisConversationStore({
        client,
        ...(prefix === undefined ? {} : { prefix }),
      });
      const dedupe = createRedisDedupeStore({ client, ...(prefix === undefined ? {} : { prefix }) });
      const close = async () => {
        await closeAll(conversations, dedupe);
        await closeClient();
      };
      return { conversations, dedupe, close };
    }
    case 'postgres': {
      const { pool, close: closePool } = postgresFrom(options.postgres);
      const location = {
        pool,
        ...(options.schema === undefined ? {} : { schema: options.schema }),
        ...(options.tablePrefix === undefined ? {} : { tablePrefix: options.tablePrefix }),
      };
      try {
        const conversations = createPostgresConversationStore(location);
        const dedupe = createPostgresDedupeStore(location);
        const close = async () => {
          await closeAll(conversations, dedupe);
          await closePool();
        };
        return { conversations, dedupe, close };
      } catch (err) {
        void closePool();
        throw err;
      }
    }
    default:
      throw new ClawmeshError(
        'INVALID_ARGUMENT',
        `unknown store kind "${kind}" (expected memory, sqlite, redis or postgres)`,
        {
          details: { kind },
        },
      );
  }
}

/** Options of {@link createTurnLease}. */
export interface TurnLeaseOptions extends LeaseDefaults {
  /** `memory` for one process (the monolith), `redis` across processes. */
  kind: 'memory' | 'redis';
  /**
   * For `redis`: a node-redis v5 client, connected or connecting (left open by `close()`), or a
   * URL (a client is made, and closed by `close()`). The lease also opens one subscriber
   * connection, duplicated from it, the first time a turn waits.
   */
  redis?: RedisLeaseClient | string;
  /** For `redis`: prepended to every key and channel (default `clawmesh:`). */
  prefix?: string;
  /** For `redis`: how often a waiter polls when no release message wakes it (default 100 ms). */
  pollMs?: number;
}

/**
 * Creates the turn lease of one process: `memory` for the monolith, `redis` for conversation
 * replicas in several processes.
 *
 * @example
 * const lease = createTurnLease({ kind: 'redis', redis: process.env.REDIS_URL, ttlMs: 10_000 });
 * const conversation = createConversationService({ ...deps, lease });
 */
export function createTurnLease(options: TurnLeaseOptions): TurnLease {
  const defaults: LeaseDefaults = {
    ...(options.ttlMs === undefined ? {} : { ttlMs: options.ttlMs }),
    ...(options.waitMs === undefined ? {} : { waitMs: options.waitMs }),
  };
  const kind: string = options.kind;
  switch (options.kind) {
    case 'memory':
      return createMemoryTurnLease(defaults);
    case 'redis': {
      const { client, close: closeClient } = redisFrom(options.redis, 'lease.redis');
      const lease = createRedisTurnLease({
        ...defaults,
        client: client as RedisLeaseClient,
        ...(options.prefix === undefined ? {} : { prefix: options.prefix }),
        ...(options.pollMs === undefined ? {} : { pollMs: options.pollMs }),
      });
      return {
        kind: lease.kind,
        acquire: (conversationId, acquireOptions) => lease.acquire(conversationId, acquireOptions),
        async close() {
          await lease.close();
          await closeClient();
        },
      };
    }
    default:
      throw new ClawmeshError(
        'INVALID_ARGUMENT',
        `unknown turn lease kind "${kind}" (expected memory or redis)`,
        {
          details: { kind },
        },
      );
  }
}

// Loaded only when a process makes its own client: `redis` costs about 280 ms to load, `pg` 70 ms.
const load = createRequire(import.meta.url);

/** The client to use, and how to close it: only a client made here from a URL is closed. */
function redisFrom<C>(source: C | string | undefined, what: string): { client: C; close(): Promise<void> } {
  if (source === undefined || source === null || source === '') {
    throw new ClawmeshError('INVALID_ARGUMENT', `the redis store and lease need ${what}: a client or a URL`);
  }
  if (typeof source !== 'string') return { client: source, close: async () => undefined };
  const { createClient } = load('redis') as typeof import('redis');
  const client = createClient({ url: source });
  // Errors reach callers through their commands; an unhandled 'error' event would end the process.
  client.on('error', () => undefined);
  client.connect().catch(() => undefined);
  return {
    client: client as C,
    async close() {
      // A client still trying to connect would never finish a graceful close: drop it.
      if (client.isReady) await client.close().catch(() => client.destroy());
      else if (client.isOpen) client.destroy();
    },
  };
}

/** The pool to use, and how to end it: only a pool made here from a connection string is ended. */
function postgresFrom(source: Pool | string | undefined): { pool: Pool; close(): Promise<void> } {
  if (source === undefined || source === '') {
    throw new ClawmeshError(
      'INVALID_ARGUMENT',
      'the postgres store needs store.postgres: a pg Pool or a URL',
    );
  }
  if (typeof source !== 'string') return { pool: source, close: async () => undefined };
  const pg = load('pg') as typeof import('pg');
  const pool = new pg.Pool({
    connectionString: withDefaultPostgresUser(source),
    connectionTimeoutMillis: 5000,
  });
  // An idle client's error (the server restarted) must not end the process; the next query reconnects.
  pool.on('error', () => undefined);
  let ended: Promise<void> | undefined;
  return { pool, close: () => (ended ??= pool.end()) };
}

async function closeAll(...stores: { close(): Promise<void> }[]): Promise<void> {
  await Promise.all(stores.map((store) => store.close()));
}
