import { ClawmeshError } from '../../core/errors.ts';
import { attachSqlite, guarded, type SqliteSource } from '../../store/sqlite.ts';
import { checkTtl, newPairingCode, normalizeCode, pairingErrors } from './pairing-code.ts';
import type { ApprovedSender, IssuedCode, PairingRequest, PairingStore } from './pairing-types.ts';

const SCHEMA = `
CREATE TABLE IF NOT EXISTS pairing_requests (
  channel TEXT NOT NULL,
  code TEXT NOT NULL,
  user_id TEXT NOT NULL,
  user_name TEXT,
  created_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL,
  PRIMARY KEY (channel, code)
) STRICT;
CREATE INDEX IF NOT EXISTS pairing_requests_user ON pairing_requests (channel, user_id);
CREATE TABLE IF NOT EXISTS pairing_approved (
  channel TEXT NOT NULL,
  user_id TEXT NOT NULL,
  user_name TEXT,
  approved_at INTEGER NOT NULL,
  PRIMARY KEY (channel, user_id)
) STRICT, WITHOUT ROWID;
`;

const DEFAULT_MAX_PENDING = 100;
/** Expired codes are kept this long, so approving one says "expired" rather than "unknown". */
const EXPIRED_GRACE_MS = 24 * 3600_000;

interface RequestRow {
  channel: string;
  code: string;
  user_id: string;
  user_name: string | null;
  created_at: number;
  expires_at: number;
}

interface ApprovedRow {
  channel: string;
  user_id: string;
  user_name: string | null;
  approved_at: number;
}

/**
 * The SQLite pairing store: the server and `clawmesh pairing` open the same file, so codes the
 * server issues can be approved from the command line.
 *
 * @example
 * const pairing = createSqlitePairingStore({ path: './data/clawmesh.db' });
 */
export function createSqlitePairingStore(source: SqliteSource): PairingStore {
  const { db, owned } = attachSqlite(source);
  guarded('create pairing schema', () => db.exec(SCHEMA));

  const liveOfUser = db.prepare<[string, string, number], RequestRow>(
    'SELECT * FROM pairing_requests WHERE channel = ? AND user_id = ? AND expires_at > ? LIMIT 1',
  );
  const countLive = db.prepare<[string, number], { n: number }>(
    'SELECT COUNT(*) AS n FROM pairing_requests WHERE channel = ? AND expires_at > ?',
  );
  const deleteExpired = db.prepare<[number]>('DELETE FROM pairing_requests WHERE expires_at <= ?');
  const deleteOfUser = db.prepare<[string, string]>(
    'DELETE FROM pairing_requests WHERE channel = ? AND user_id = ?',
  );
  const insertRequest = db.prepare<[string, string, string, string | null, number, number]>(
    `INSERT INTO pairing_requests (channel, code, user_id, user_name, created_at, expires_at)
     VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`,
  );
  const selectRequest = db.prepare<[string, string], RequestRow>(
    'SELECT * FROM pairing_requests WHERE channel = ? AND code = ?',
  );
  const deleteRequest = db.prepare<[string, string]>(
    'DELETE FROM pairing_requests WHERE channel = ? AND code = ?',
  );
  const upsertApproved = db.prepare<[string, string, string | null, number]>(
    `INSERT INTO pairing_approved (channel, user_id, user_name, approved_at) VALUES (?, ?, ?, ?)
     ON CONFLICT (channel, user_id) DO UPDATE SET user_name = excluded.user_name, approved_at = excluded.approved_at`,
  );
  const selectApproved = db.prepare<[string, string], { one: number }>(
    'SELECT 1 AS one FROM pairing_approved WHERE channel = ? AND user_id = ?',
  );
  const deleteApproved = db.prepare<[string, string]>(
    'DELETE FROM pairing_approved WHERE channel = ? AND user_id = ?',
  );

  const requestTx = db.transaction(
    (channel: string, userId: string, ttlMs: number, userName: string | null, max: number): IssuedCode => {
      const now = Date.now();
      deleteExpired.run(now - EXPIRED_GRACE_MS);
      const live = liveOfUser.get(channel, userId, now);
      if (live) return { code: live.code, expiresAt: live.expires_at, created: false };
      deleteOfUser.run(channel, userId);
      if ((countLive.get(channel, now)?.n ?? 0) >= max) throw pairingErrors.tooMany(channel, max);
      for (;;) {
        const code = newPairingCode();
        if (insertRequest.run(channel, code, userId, userName, now, now + ttlMs).changes > 0) {
          return { code, expiresAt: now + ttlMs, created: true };
        }
      }
    },
  );
  const approveTx = db.transaction((channel: string, code: string): ApprovedSender => {
    const row = selectRequest.get(channel, code);
    if (!row) throw pairingErrors.unknown(channel, code);
    deleteRequest.run(channel, code);
    if (row.expires_at <= Date.now()) return { channel, userId: '', approvedAt: -1 };
    const approvedAt = Date.now();
    upsertApproved.run(channel, row.user_id, row.user_name, approvedAt);
    return {
      channel,
      userId: row.user_id,
      ...(row.user_name ? { userName: row.user_name } : {}),
      approvedAt,
    };
  });

  let closed = false;
  const run = <T>(what: string, fn: () => T): T => {
    if (closed) {
      throw new ClawmeshError('UNAVAILABLE', `${what}: the pairing store is closed`, { retryable: false });
    }
    return guarded(what, fn);
  };

  return {
    kind: 'sqlite',
    async request(channel, userId, options) {
      const ttlMs = checkTtl(options.ttlMs);
      const max = options.maxPending ?? DEFAULT_MAX_PENDING;
      return run('issue pairing code', () =>
        requestTx.immediate(channel, userId, ttlMs, options.userName ?? null, max),
      );
    },
    async approve(channel, typed) {
      const code = normalizeCode(typed);
      const sender = run('approve pairing code', () => approveTx.immediate(channel, code));
      // The expired code is deleted in the transaction; the error is raised outside it so the delete commits.
      if (sender.approvedAt < 0) throw pairingErrors.expired(channel, code);
      return sender;
    },
    async isApproved(channel, userId) {
      return run('check pairing approval', () => selectApproved.get(channel, userId)) !== undefined;
    },
    async list(channel) {
      return run('list pairing', () => {
        const now = Date.now();
        const where = channel === undefined ? '' : 'WHERE channel = ?';
        const args = channel === undefined ? [] : [channel];
        const approved = db
          .prepare<string[], ApprovedRow>(
            `SELECT * FROM pairing_approved ${where} ORDER BY approved_at, user_id`,
          )
          .all(...args);
        const pending = db
          .prepare<(string | number)[], RequestRow>(
            `SELECT * FROM pairing_requests WHERE expires_at > ? ${channel === undefined ? '' : 'AND channel = ?'}
             ORDER BY created_at, code`,
          )
          .all(now, ...args);
        return { approved: approved.map(toApproved), pending: pending.map(toRequest) };
      });
    },
    async revoke(channel, userId) {
      return run('revoke pairing approval', () => deleteApproved.run(channel, userId)).changes > 0;
    },
    async close() {
      if (closed) return;
      closed = true;
      if (owned) db.close();
    },
  };
}

function toApproved(row: ApprovedRow): ApprovedSender {
  return {
    channel: row.channel,
    userId: row.user_id,
    ...(row.user_name ? { userName: row.user_name } : {}),
    approvedAt: row.approved_at,
  };
}

function toRequest(row: RequestRow): PairingRequest {
  return {
    channel: row.channel,
    code: row.code,
    userId: row.user_id,
    ...(row.user_name ? { userName: row.user_name } : {}),
    createdAt: row.created_at,
    expiresAt: row.expires_at,
  };
}
