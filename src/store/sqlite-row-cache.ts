import { trimOldest } from '../core/bounded.ts';
import type { SqliteDatabase } from './sqlite.ts';

/** Rows kept at most per connection; the oldest written go first. */
const MAX_ROWS = 10_000;

/**
 * Rows of one table as this connection last read or wrote them, so the reads of a turn (the
 * conversation's row, before the turn and inside its append) need not go to SQLite again.
 *
 * `PRAGMA data_version` changes whenever another connection commits (another process, or another
 * connection of this one): every row is then dropped and read again. The connection's own
 * writes go through {@link RowCache.set}, and a rolled-back transaction drops everything
 * ({@link RowCache.clear}), so a row here is never older than the database.
 */
export interface RowCache<R> {
  /** The row of `id`: the kept one while no other connection has committed, else `load()`. */
  get(id: string, load: () => R | undefined): R | undefined;
  /** Records the row as this connection wrote it (inside a transaction that is about to commit). */
  set(id: string, row: R): void;
  /** Drops every row (after a rollback). */
  clear(): void;
}

const caches = new WeakMap<SqliteDatabase, Map<string, RowCache<unknown>>>();

/**
 * The {@link RowCache} of `table` on `db`, shared by every store attached to that connection:
 * a write through one of them is seen by the others, whose `data_version` it does not change.
 */
export function rowCacheOf<R>(db: SqliteDatabase, table: string): RowCache<R> {
  let tables = caches.get(db);
  if (!tables) {
    tables = new Map();
    caches.set(db, tables);
  }
  let cache = tables.get(table);
  if (!cache) {
    cache = createRowCache(db);
    tables.set(table, cache);
  }
  return cache as RowCache<R>;
}

function createRowCache<R>(db: SqliteDatabase): RowCache<R> {
  const dataVersion = db.prepare<[], number>('PRAGMA data_version').pluck();
  const rows = new Map<string, R>();
  let seenVersion = -1;
  return {
    get(id, load) {
      const version = dataVersion.get()!;
      if (version !== seenVersion) {
        rows.clear();
        seenVersion = version;
      }
      const kept = rows.get(id);
      if (kept !== undefined) return kept;
      const row = load();
      if (row !== undefined) this.set(id, row);
      return row;
    },
    set(id, row) {
      rows.delete(id);
      rows.set(id, row);
      trimOldest(rows, MAX_ROWS);
    },
    clear() {
      rows.clear();
    },
  };
}
