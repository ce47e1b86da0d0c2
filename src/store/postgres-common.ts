import { createHash } from 'node:crypto';
import type { Pool, QueryConfig } from 'pg';
import { ClawmeshError } from '../core/errors.ts';

/*
 * Shared by the PostgreSQL adapters: where their tables live, creating them once per store on
 * first use (serialized across processes by an advisory lock, since concurrent
 * `CREATE TABLE IF NOT EXISTS` can still collide), and the mapping of failures onto error codes.
 * Only types come from `pg`; the caller creates the pool.
 */

/** Where the PostgreSQL adapters keep their tables. */
export interface PostgresLocation {
  /** A `pg` Pool; the store never ends it. */
  pool: Pool;
  /** The schema of the tables, created when missing (default `public`). */
  schema?: string;
  /** Prepended to each table name (default `clawmesh_`). */
  tablePrefix?: string;
}

const IDENTIFIER = /^[a-z_][a-z0-9_]{0,47}$/;

/** A schema-qualified, quoted table name; throws `INVALID_ARGUMENT` for a name that is not plain. */
export function tableName(location: PostgresLocation, table: string): string {
  const schema = location.schema ?? 'public';
  const prefix = location.tablePrefix ?? 'clawmesh_';
  for (const [what, value] of [
    ['schema', schema],
    ['tablePrefix', prefix],
  ] as const) {
    if (!(value === '' && what === 'tablePrefix') && !IDENTIFIER.test(value)) {
      throw new ClawmeshError(
        'INVALID_ARGUMENT',
        `postgres ${what} must be lower-case letters, digits and _ (got "${value}")`,
      );
    }
  }
  return `"${schema}"."${prefix}${table}"`;
}

/**
 * Returns a function that creates the schema once (the first caller runs `ddl`, later callers
 * wait for it; a failure lets the next call try again).
 */
export function schemaOnce(location: PostgresLocation, ddl: string): () => Promise<void> {
  const schema = location.schema ?? 'public';
  let ready: Promise<void> | undefined;
  return () => {
    ready ??= createSchema(location.pool, schema, ddl).catch((err: unknown) => {
      ready = undefined;
      throw pgError('create postgres schema', err);
    });
    return ready;
  };
}

async function createSchema(pool: Pool, schema: string, ddl: string): Promise<void> {
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    await client.query("SELECT pg_advisory_xact_lock(hashtext('clawmesh-schema'))");
    if (schema !== 'public') await client.query(`CREATE SCHEMA IF NOT EXISTS "${schema}"`);
    await client.query(ddl);
    await client.query('COMMIT');
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw err;
  } finally {
    client.release();
  }
}

/**
 * Runs a PostgreSQL call, mapping failures: a ClawmeshError passes through; a connection
 * failure, a shutdown, a serialization failure or deadlock is `UNAVAILABLE`; anything else is
 * `INTERNAL`.
 */
export async function guardedPg<T>(what: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw pgError(what, err);
  }
}

/** The ClawmeshError for a failed PostgreSQL call (see {@link guardedPg}). */
export function pgError(what: string, err: unknown): ClawmeshError {
  if (err instanceof ClawmeshError) return err;
  const message = err instanceof Error ? err.message : String(err);
  const code = String((err as { code?: unknown } | undefined)?.code ?? '');
  // SQLSTATE classes 08 (connection), 53 (resources), 57 (operator intervention), 40 (rollback);
  // Node's socket errors (ECONNREFUSED, ...); and pg's own connection errors, which carry no code.
  const ownError = /terminated|timeout exceeded|pool after calling end|connection error|not queryable/i;
  if (/^(08|53|57|40)/.test(code) || /^E[A-Z]+$/.test(code) || ownError.test(message)) {
    return new ClawmeshError('UNAVAILABLE', `${what}: postgres is unavailable (${message})`, { cause: err });
  }
  return new ClawmeshError('INTERNAL', `${what}: ${message}`, { cause: err });
}

/** A store's closed flag and the guard that every call goes through. */
export function closedGuard(): {
  run<T>(what: string, fn: () => Promise<T>): Promise<T>;
  close(): void;
} {
  let closed = false;
  return {
    run(what, fn) {
      if (closed) {
        return Promise.reject(
          new ClawmeshError('UNAVAILABLE', `${what}: the store is closed`, { retryable: false }),
        );
      }
      return guardedPg(what, fn);
    },
    close() {
      closed = true;
    },
  };
}

/**
 * A named statement: PostgreSQL parses and plans it once per connection. The name carries a
 * hash of the text, since stores in other schemas share the pool's connections.
 */
export function statement(text: string): QueryConfig {
  return { name: `clawmesh_${createHash('sha1').update(text).digest('hex').slice(0, 20)}`, text };
}

/** A TTL in whole milliseconds (the columns are integers); throws `INVALID_ARGUMENT` unless positive. */
export function ttlOf(ttlMs: number): number {
  if (!(Number.isFinite(ttlMs) && ttlMs > 0)) {
    throw new ClawmeshError('INVALID_ARGUMENT', `ttlMs must be a positive number, got ${ttlMs}`);
  }
  return Math.ceil(ttlMs);
}
