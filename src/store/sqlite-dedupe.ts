import { ClawmeshError } from '../core/errors.ts';
import { attachSqlite, guarded, type SqliteSource } from './sqlite.ts';
import type { ClaimResult, DedupeStore } from './types.ts';

const SCHEMA = `
CREATE TABLE IF NOT EXISTS dedupe (
  key TEXT PRIMARY KEY,
  state TEXT NOT NULL CHECK (state IN ('pending', 'done')),
  value TEXT,
  expires_at INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS dedupe_expires_at ON dedupe (expires_at);
`;

interface DedupeRow {
  state: 'pending' | 'done';
  value: string | null;
}

/** Options of {@link createSqliteDedupeStore}. */
export type SqliteDedupeOptions = SqliteSource & {
  /** How often, at most, a claim also deletes expired rows (default 1000 ms). */
  cleanupIntervalMs?: number;
  /** How many expired rows one cleanup deletes at most (default 500). */
  cleanupBatch?: number;
};

/**
 * The SQLite dedupe store. A claim is one atomic upsert that only takes over an expired row;
 * expired rows read as absent and are deleted in small batches as claims arrive.
 *
 * @example
 * const dedupe = createSqliteDedupeStore({ db: openSqlite('./data/clawmesh.db') });
 */
export function createSqliteDedupeStore(options: SqliteDedupeOptions): DedupeStore {
  const { db, owned } = attachSqlite(options);
  const cleanupIntervalMs = options.cleanupIntervalMs ?? 1000;
  const cleanupBatch = options.cleanupBatch ?? 500;
  guarded('create dedupe schema', () => db.exec(SCHEMA));

  const claimOne = db.prepare<[{ key: string; expiresAt: number; now: number }]>(
    `INSERT INTO dedupe (key, state, value, expires_at) VALUES (@key, 'pending', NULL, @expiresAt)
     ON CONFLICT (key) DO UPDATE SET state = 'pending', value = NULL, expires_at = excluded.expires_at
     WHERE dedupe.expires_at <= @now`,
  );
  const selectOne = db.prepare<[string, number], DedupeRow>(
    'SELECT state, value FROM dedupe WHERE key = ? AND expires_at > ?',
  );
  const completeOne = db.prepare<[string, string | null, number]>(
    `INSERT INTO dedupe (key, state, value, expires_at) VALUES (?, 'done', ?, ?)
     ON CONFLICT (key) DO UPDATE SET state = 'done', value = excluded.value, expires_at = excluded.expires_at`,
  );
  const releaseOne = db.prepare<[string]>("DELETE FROM dedupe WHERE key = ? AND state = 'pending'");
  const deleteExpired = db.prepare<[number, number]>(
    'DELETE FROM dedupe WHERE key IN (SELECT key FROM dedupe WHERE expires_at <= ? LIMIT ?)',
  );

  const claimTx = db.transaction((key: string, ttlMs: number, now: number): ClaimResult => {
    if (claimOne.run({ key, expiresAt: now + ttlMs, now }).changes > 0) return { state: 'claimed' };
    const row = selectOne.get(key, now);
    // The upsert only skips a live row, and this transaction holds the write lock.
    if (!row) throw new ClawmeshError('INTERNAL', `dedupe key "${key}" vanished during a claim`);
    if (row.state === 'pending') return { state: 'pending' };
    return { state: 'done', value: row.value === null ? undefined : JSON.parse(row.value) };
  });

  let closed = false;
  let lastCleanup = 0;
  const run = <T>(what: string, fn: () => T): T => {
    if (closed) throw new ClawmeshError('UNAVAILABLE', `${what}: the store is closed`, { retryable: false });
    return guarded(what, fn);
  };

  return {
    kind: 'sqlite',
    async claim(key, ttlMs) {
      const ttl = checkTtl(ttlMs);
      const now = Date.now();
      if (now - lastCleanup >= cleanupIntervalMs) {
        lastCleanup = now;
        run('delete expired dedupe keys', () => deleteExpired.run(now, cleanupBatch));
      }
      return run('claim dedupe key', () => claimTx.immediate(key, ttl, now));
    },
    async complete(key, value, ttlMs) {
      const ttl = checkTtl(ttlMs);
      const json = toJson(value);
      run('complete dedupe key', () => completeOne.run(key, json, Date.now() + ttl));
    },
    async release(key) {
      run('release dedupe key', () => releaseOne.run(key));
    },
    async close() {
      if (closed) return;
      closed = true;
      if (owned) db.close();
    },
  };
}

/** Validates a TTL and rounds it up to whole milliseconds (the column is an integer). */
function checkTtl(ttlMs: number): number {
  if (!(Number.isFinite(ttlMs) && ttlMs > 0)) {
    throw new ClawmeshError('INVALID_ARGUMENT', `ttlMs must be a positive number, got ${ttlMs}`);
  }
  return Math.ceil(ttlMs);
}

function toJson(value: unknown): string | null {
  try {
    return JSON.stringify(value) ?? null;
  } catch (err) {
    throw new ClawmeshError('INVALID_ARGUMENT', 'a dedupe value must be JSON-serializable', { cause: err });
  }
}
