import type { QueryConfig, QueryResultRow } from 'pg';
import { ClawmeshError } from '../core/errors.ts';
import {
  closedGuard,
  type PostgresLocation,
  schemaOnce,
  statement,
  tableName,
  ttlOf,
} from './postgres-common.ts';
import type { ClaimResult, DedupeStore } from './types.ts';

/** Options of {@link createPostgresDedupeStore}. */
export type PostgresDedupeOptions = PostgresLocation & {
  /** How often, at most, a claim also deletes expired rows (default 1000 ms). */
  cleanupIntervalMs?: number;
  /** How many expired rows one cleanup deletes at most (default 500). */
  cleanupBatch?: number;
};

interface ClaimRow {
  claimed: boolean;
  state: 'pending' | 'done' | null;
  value: string | null;
}

/**
 * The PostgreSQL dedupe store. A claim is one statement: an upsert that only takes over an
 * expired row, reporting the live row when it did not. Expired rows read as absent and are
 * deleted in small batches, in the background, as claims arrive.
 *
 * @example
 * const dedupe = createPostgresDedupeStore({ pool, schema: 'clawmesh' });
 */
export function createPostgresDedupeStore(options: PostgresDedupeOptions): DedupeStore {
  const { pool } = options;
  const cleanupIntervalMs = options.cleanupIntervalMs ?? 1000;
  const cleanupBatch = options.cleanupBatch ?? 500;
  const table = tableName(options, 'dedupe');
  const indexName = `${options.tablePrefix ?? 'clawmesh_'}dedupe_expires_at`;
  const ready = schemaOnce(
    options,
    `CREATE TABLE IF NOT EXISTS ${table} (
      key text PRIMARY KEY,
      state text NOT NULL CHECK (state IN ('pending', 'done')),
      value text,
      expires_at bigint NOT NULL
    );
    CREATE INDEX IF NOT EXISTS "${indexName}" ON ${table} (expires_at);`,
  );

  // $1 key, $2 expiry of a new claim, $3 now. The statement's snapshot shows the live row the
  // upsert left alone, unless that row was inserted concurrently: then a second read finds it.
  const claimSql = statement(
    `WITH claimed AS (
      INSERT INTO ${table} AS d (key, state, value, expires_at) VALUES ($1, 'pending', NULL, $2)
      ON CONFLICT (key) DO UPDATE SET state = 'pending', value = NULL, expires_at = EXCLUDED.expires_at
      WHERE d.expires_at <= $3
      RETURNING 1
    )
    SELECT EXISTS (SELECT 1 FROM claimed) AS claimed, d.state, d.value
    FROM (SELECT 1) AS one LEFT JOIN ${table} AS d ON d.key = $1 AND d.expires_at > $3`,
  );
  const selectSql = statement(
    `SELECT false AS claimed, state, value FROM ${table} WHERE key = $1 AND expires_at > $2`,
  );
  const completeSql = statement(
    `INSERT INTO ${table} (key, state, value, expires_at) VALUES ($1, 'done', $2, $3)
     ON CONFLICT (key) DO UPDATE SET state = 'done', value = EXCLUDED.value, expires_at = EXCLUDED.expires_at`,
  );
  const releaseSql = statement(`DELETE FROM ${table} WHERE key = $1 AND state = 'pending'`);
  const cleanupSql = statement(
    `DELETE FROM ${table} WHERE key IN (SELECT key FROM ${table} WHERE expires_at <= $1 LIMIT $2)`,
  );

  const guard = closedGuard();
  const query = async <R extends QueryResultRow>(sql: QueryConfig, values: unknown[]): Promise<R[]> => {
    await ready();
    return (await pool.query<R>({ ...sql, values })).rows;
  };
  let lastCleanup = 0;
  let cleanup: Promise<unknown> = Promise.resolve();

  return {
    kind: 'postgres',
    async claim(key, ttlMs): Promise<ClaimResult> {
      const ttl = ttlOf(ttlMs);
      return guard.run('claim dedupe key', async () => {
        const now = Date.now();
        if (now - lastCleanup >= cleanupIntervalMs) {
          lastCleanup = now;
          // Not awaited: a claim never waits for housekeeping; a failed cleanup is retried later.
          cleanup = query(cleanupSql, [now, cleanupBatch]).catch(() => undefined);
        }
        let [row] = await query<ClaimRow>(claimSql, [key, now + ttl, now]);
        if (row && !row.claimed && row.state === null) [row] = await query<ClaimRow>(selectSql, [key, now]);
        if (!row)
          throw new ClawmeshError('UNAVAILABLE', `dedupe key "${key}" changed during a claim; try again`);
        if (row.claimed) return { state: 'claimed' };
        if (row.state === 'pending') return { state: 'pending' };
        return { state: 'done', value: row.value === null ? undefined : JSON.parse(row.value) };
      });
    },
    async complete(key, value, ttlMs) {
      const ttl = ttlOf(ttlMs);
      const json = toJson(value);
      await guard.run('complete dedupe key', () => query(completeSql, [key, json, Date.now() + ttl]));
    },
    async release(key) {
      await guard.run('release dedupe key', () => query(releaseSql, [key]));
    },
    async close() {
      guard.close();
      await cleanup;
    },
  };
}

function toJson(value: unknown): string | null {
  try {
    return JSON.stringify(value) ?? null;
  } catch (err) {
    throw new ClawmeshError('INVALID_ARGUMENT', 'a dedupe value must be JSON-serializable', { cause: err });
  }
}
