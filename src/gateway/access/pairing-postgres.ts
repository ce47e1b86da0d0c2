import type { PoolClient } from 'pg';
import { closedGuard, type PostgresLocation, schemaOnce, tableName } from '../../store/postgres-common.ts';
import { checkTtl, newPairingCode, normalizeCode, pairingErrors } from './pairing-code.ts';
import type { ApprovedSender, PairingRequest, PairingStore } from './pairing-types.ts';

/** Options of {@link createPostgresPairingStore}: the pool and where the tables go. */
export type PostgresPairingOptions = PostgresLocation;

const DEFAULT_MAX_PENDING = 100;
/** Expired codes are kept this long, so approving one says "expired" rather than "unknown". */
const EXPIRED_GRACE_MS = 24 * 3600_000;

interface CodeRow {
  channel: string;
  code: string;
  user_id: string;
  user_name: string | null;
  created_at: string;
  expires_at: string;
}

interface ApprovedRow {
  channel: string;
  user_id: string;
  user_name: string | null;
  approved_at: string;
}

const requestOf = (row: CodeRow): PairingRequest => ({
  channel: row.channel,
  code: row.code,
  userId: row.user_id,
  ...(row.user_name ? { userName: row.user_name } : {}),
  createdAt: Number(row.created_at),
  expiresAt: Number(row.expires_at),
});

const senderOf = (row: ApprovedRow): ApprovedSender => ({
  channel: row.channel,
  userId: row.user_id,
  ...(row.user_name ? { userName: row.user_name } : {}),
  approvedAt: Number(row.approved_at),
});

/**
 * The PostgreSQL pairing store: codes and approvals shared by every gateway replica and by
 * `clawmesh pairing` on any host that reaches the database. Issuing and approving run in a
 * transaction holding a per-channel advisory lock, so two replicas never give one sender two
 * codes, exceed the cap, or use a code twice.
 *
 * @example
 * const pairing = createPostgresPairingStore({ pool, schema: 'clawmesh' });
 */
export function createPostgresPairingStore(options: PostgresPairingOptions): PairingStore {
  const { pool } = options;
  const codes = tableName(options, 'pairing_codes');
  const approved = tableName(options, 'pairing_approved');
  const ready = schemaOnce(
    options,
    `CREATE TABLE IF NOT EXISTS ${codes} (
      channel text NOT NULL,
      code text NOT NULL,
      user_id text NOT NULL,
      user_name text,
      created_at bigint NOT NULL,
      expires_at bigint NOT NULL,
      PRIMARY KEY (channel, code)
    );
    CREATE TABLE IF NOT EXISTS ${approved} (
      channel text NOT NULL,
      user_id text NOT NULL,
      user_name text,
      approved_at bigint NOT NULL,
      PRIMARY KEY (channel, user_id)
    );`,
  );
  const guard = closedGuard();
  // The lock's key: the table and the channel, so stores in other schemas do not contend.
  const lockKey = (channel: string) => `${codes}:${channel}`;

  const inTransaction = async <T>(channel: string, work: (client: PoolClient) => Promise<T>): Promise<T> => {
    await ready();
    const client = await pool.connect();
    try {
      await client.query('BEGIN');
      await client.query('SELECT pg_advisory_xact_lock(hashtext($1))', [lockKey(channel)]);
      const result = await work(client);
      await client.query('COMMIT');
      return result;
    } catch (err) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw err;
    } finally {
      client.release();
    }
  };

  return {
    kind: 'postgres',
    request(channel, userId, opts) {
      return guard.run('issue pairing code', async () => {
        const ttlMs = checkTtl(opts.ttlMs);
        const max = opts.maxPending ?? DEFAULT_MAX_PENDING;
        return inTransaction(channel, async (client) => {
          const now = Date.now();
          await client.query(
            `DELETE FROM ${codes} WHERE channel = $1 AND (expires_at <= $3 OR (user_id = $2 AND expires_at <= $4))`,
            [channel, userId, now - EXPIRED_GRACE_MS, now],
          );
          const live = await client.query<CodeRow>(
            `SELECT * FROM ${codes} WHERE channel = $1 AND user_id = $2 AND expires_at > $3 LIMIT 1`,
            [channel, userId, now],
          );
          const found = live.rows[0];
          if (found) return { code: found.code, expiresAt: Number(found.expires_at), created: false };
          const count = await client.query<{ n: string }>(
            `SELECT count(*) AS n FROM ${codes} WHERE channel = $1 AND expires_at > $2`,
            [channel, now],
          );
          if (Number(count.rows[0]?.n ?? 0) >= max) throw pairingErrors.tooMany(channel, max);
          for (;;) {
            const code = newPairingCode();
            const inserted = await client.query(
              `INSERT INTO ${codes} (channel, code, user_id, user_name, created_at, expires_at)
               VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING`,
              [channel, code, userId, opts.userName ?? null, now, now + ttlMs],
            );
            if (inserted.rowCount === 1) return { code, expiresAt: now + ttlMs, created: true };
          }
        });
      });
    },
    approve(channel, typed) {
      return guard.run('approve pairing code', async () => {
        const code = normalizeCode(typed);
        const result = await inTransaction(channel, async (client) => {
          const used = await client.query<CodeRow>(
            `DELETE FROM ${codes} WHERE channel = $1 AND code = $2 RETURNING *`,
            [channel, code],
          );
          const row = used.rows[0];
          if (!row) return 'unknown' as const;
          const now = Date.now();
          if (Number(row.expires_at) <= now) return 'expired' as const;
          const sender: ApprovedSender = {
            channel,
            userId: row.user_id,
            ...(row.user_name ? { userName: row.user_name } : {}),
            approvedAt: now,
          };
          await client.query(
            `INSERT INTO ${approved} (channel, user_id, user_name, approved_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (channel, user_id) DO UPDATE SET user_name = EXCLUDED.user_name, approved_at = EXCLUDED.approved_at`,
            [channel, row.user_id, row.user_name, now],
          );
          return sender;
        });
        if (result === 'unknown') throw pairingErrors.unknown(channel, code);
        if (result === 'expired') throw pairingErrors.expired(channel, code);
        return result;
      });
    },
    isApproved(channel, userId) {
      return guard.run('check pairing approval', async () => {
        await ready();
        const found = await pool.query(`SELECT 1 FROM ${approved} WHERE channel = $1 AND user_id = $2`, [
          channel,
          userId,
        ]);
        return (found.rowCount ?? 0) > 0;
      });
    },
    list(channel) {
      return guard.run('list pairing', async () => {
        await ready();
        const now = Date.now();
        const where = channel === undefined ? '' : 'AND channel = $2';
        const params: unknown[] = channel === undefined ? [now] : [now, channel];
        const pending = await pool.query<CodeRow>(
          `SELECT * FROM ${codes} WHERE expires_at > $1 ${where} ORDER BY created_at, channel, code`,
          params,
        );
        const senders = await pool.query<ApprovedRow>(
          `SELECT * FROM ${approved} ${channel === undefined ? '' : 'WHERE channel = $1'} ORDER BY approved_at, channel, user_id`,
          channel === undefined ? [] : [channel],
        );
        return { approved: senders.rows.map(senderOf), pending: pending.rows.map(requestOf) };
      });
    },
    revoke(channel, userId) {
      return guard.run('revoke pairing approval', async () => {
        await ready();
        const removed = await pool.query(`DELETE FROM ${approved} WHERE channel = $1 AND user_id = $2`, [
          channel,
          userId,
        ]);
        return (removed.rowCount ?? 0) > 0;
      });
    },
    async close() {
      guard.close();
    },
  };
}
