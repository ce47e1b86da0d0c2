import { mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import Database from 'better-sqlite3';
import { ClawmeshError } from '../core/errors.ts';

/** A better-sqlite3 connection. */
export type SqliteDatabase = Database.Database;

/** The database file the SQLite stores use when no path is given. */
export const DEFAULT_SQLITE_PATH = './data/clawmesh.db';

/**
 * Where an SQLite store keeps its data: a file it opens itself (and closes on `close()`), or a
 * connection the caller opened with {@link openSqlite} and closes itself.
 */
export type SqliteSource = { path: string } | { db: SqliteDatabase };

/**
 * Opens an SQLite database for the stores: creates the parent directory when missing, turns on
 * WAL, `synchronous=NORMAL`, a busy timeout and foreign keys. `:memory:` opens a private database.
 *
 * @example
 * const db = openSqlite('./data/clawmesh.db');
 * const conversations = createSqliteConversationStore({ db });
 */
export function openSqlite(path: string): SqliteDatabase {
  if (!path) throw new ClawmeshError('INVALID_ARGUMENT', 'an SQLite database path is required');
  try {
    if (path !== ':memory:') mkdirSync(dirname(resolve(path)), { recursive: true });
    const db = new Database(path);
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = NORMAL');
    db.pragma('busy_timeout = 5000');
    db.pragma('foreign_keys = ON');
    return db;
  } catch (err) {
    throw new ClawmeshError('UNAVAILABLE', `cannot open SQLite database at ${path}: ${messageOf(err)}`, {
      cause: err,
      retryable: false,
    });
  }
}

/** Resolves a {@link SqliteSource} to a connection, and whether the store owns (and must close) it. */
export function attachSqlite(source: SqliteSource): { db: SqliteDatabase; owned: boolean } {
  if ('db' in source) return { db: source.db, owned: false };
  return { db: openSqlite(source.path), owned: true };
}

/**
 * Runs a synchronous database call and maps what it throws to a `ClawmeshError`: a busy or
 * locked database, or a closed connection, is `UNAVAILABLE`; anything else unexpected is `INTERNAL`.
 */
export function guarded<T>(what: string, fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    if (err instanceof ClawmeshError) throw err;
    const code = err instanceof Database.SqliteError ? err.code : '';
    if (code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_LOCKED')) {
      throw new ClawmeshError('UNAVAILABLE', `${what}: database is busy`, { cause: err });
    }
    if (err instanceof TypeError && /not open/i.test(err.message)) {
      throw new ClawmeshError('UNAVAILABLE', `${what}: database is closed`, { cause: err, retryable: false });
    }
    throw new ClawmeshError('INTERNAL', `${what}: ${messageOf(err)}`, { cause: err });
  }
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
