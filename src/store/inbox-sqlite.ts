import { ClawmeshError } from '../core/errors.ts';
import { checkLimit } from './checks.ts';
import type { InboxEntry, InboxReply, InboxStatus, InboxStore } from './inbox-types.ts';
import { attachSqlite, guarded, type SqliteSource } from './sqlite.ts';

const SCHEMA = `
CREATE TABLE IF NOT EXISTS channel_inbox (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  id TEXT NOT NULL UNIQUE,
  channel TEXT NOT NULL,
  message TEXT NOT NULL,
  status TEXT NOT NULL CHECK (status IN ('pending', 'sending', 'done', 'failed')),
  reply TEXT,
  parts_sent INTEGER NOT NULL DEFAULT 0,
  attempts INTEGER NOT NULL DEFAULT 0,
  error TEXT,
  outcome TEXT,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
) STRICT;
CREATE INDEX IF NOT EXISTS channel_inbox_status ON channel_inbox (status, seq);
`;

interface Row {
  id: string;
  channel: string;
  message: string;
  status: InboxStatus;
  reply: string | null;
  parts_sent: number;
  attempts: number;
  error: string | null;
  outcome: string | null;
  created_at: number;
  updated_at: number;
}

const COLUMNS =
  'id, channel, message, status, reply, parts_sent, attempts, error, outcome, created_at, updated_at';

/**
 * The SQLite inbox. It may share the database file of the conversation store: give it the
 * same path (it opens its own connection; WAL lets both write) or the same connection.
 *
 * @example
 * const inbox = createSqliteInboxStore({ path: './data/clawmesh.db' });
 */
export function createSqliteInboxStore(source: SqliteSource): InboxStore {
  const { db, owned } = attachSqlite(source);
  guarded('create inbox schema', () => db.exec(SCHEMA));

  const insert = db.prepare<[string, string, string, number, number]>(
    `INSERT INTO channel_inbox (id, channel, message, status, created_at, updated_at)
     VALUES (?, ?, ?, 'pending', ?, ?) ON CONFLICT (id) DO NOTHING`,
  );
  const selectOne = db.prepare<[string], Row>(`SELECT ${COLUMNS} FROM channel_inbox WHERE id = ?`);
  const setReply = db.prepare<[string, number, string]>(
    "UPDATE channel_inbox SET reply = ?, status = 'sending', parts_sent = 0, updated_at = ? WHERE id = ?",
  );
  const progress = db.prepare<[number, number, string | null, number, string]>(
    'UPDATE channel_inbox SET parts_sent = ?, attempts = ?, error = ?, updated_at = ? WHERE id = ?',
  );
  const finish = db.prepare<[string, number, string]>(
    "UPDATE channel_inbox SET status = 'done', outcome = ?, error = NULL, updated_at = ? WHERE id = ?",
  );
  const fail = db.prepare<[string, number, string]>(
    "UPDATE channel_inbox SET status = 'failed', error = ?, updated_at = ? WHERE id = ?",
  );
  const retry = db.prepare<[number, string]>(
    `UPDATE channel_inbox SET status = CASE WHEN reply IS NULL THEN 'pending' ELSE 'sending' END,
       attempts = 0, updated_at = ? WHERE id = ? AND status = 'failed'`,
  );
  const unfinished = db.prepare<[number], Row>(
    `SELECT ${COLUMNS} FROM channel_inbox WHERE status IN ('pending', 'sending') ORDER BY seq LIMIT ?`,
  );
  const prune = db.prepare<[number]>("DELETE FROM channel_inbox WHERE status = 'done' AND updated_at < ?");
  const ping = db.prepare('SELECT 1');

  let closed = false;
  const run = <T>(what: string, fn: () => T): T => {
    if (closed) throw new ClawmeshError('UNAVAILABLE', `${what}: the inbox is closed`, { retryable: false });
    return guarded(what, fn);
  };
  const update = (what: string, id: string, fn: () => { changes: number }) => {
    if (run(what, fn).changes === 0) throw new ClawmeshError('NOT_FOUND', `${what}: no inbox entry "${id}"`);
  };

  return {
    kind: 'sqlite',
    async add({ id, channel, message }) {
      const json = toJson(message);
      const now = Date.now();
      return run('add inbox entry', () => insert.run(id, channel, json, now, now)).changes > 0;
    },
    async get(id) {
      const row = run('get inbox entry', () => selectOne.get(id));
      return row ? toEntry(row) : undefined;
    },
    async setReply(id, reply) {
      const json = toJson(reply);
      update('set inbox reply', id, () => setReply.run(json, Date.now(), id));
    },
    async progress(id, { partsSent, attempts, error }) {
      update('record inbox progress', id, () =>
        progress.run(partsSent, attempts, error ?? null, Date.now(), id),
      );
    },
    async finish(id, outcome) {
      update('finish inbox entry', id, () => finish.run(outcome, Date.now(), id));
    },
    async fail(id, error) {
      update('fail inbox entry', id, () => fail.run(error, Date.now(), id));
    },
    async retry(id) {
      if (run('retry inbox entry', () => retry.run(Date.now(), id)).changes > 0) return true;
      if (!run('get inbox entry', () => selectOne.get(id))) {
        throw new ClawmeshError('NOT_FOUND', `retry inbox entry: no inbox entry "${id}"`);
      }
      return false;
    },
    async list(query = {}) {
      checkLimit(query.limit);
      const where: string[] = [];
      const params: (string | number)[] = [];
      if (query.status) {
        where.push('status = ?');
        params.push(query.status);
      }
      if (query.channel) {
        where.push('channel = ?');
        params.push(query.channel);
      }
      params.push(query.limit ?? 100);
      const sql = `SELECT ${COLUMNS} FROM channel_inbox ${where.length ? `WHERE ${where.join(' AND ')}` : ''}
        ORDER BY seq DESC LIMIT ?`;
      return run('list inbox entries', () => db.prepare<(string | number)[], Row>(sql).all(...params)).map(
        toEntry,
      );
    },
    async unfinished(limit = 1000) {
      checkLimit(limit);
      return run('list unfinished inbox entries', () => unfinished.all(limit)).map(toEntry);
    },
    async prune(before) {
      return run('prune inbox', () => prune.run(before)).changes;
    },
    async ping() {
      run('ping inbox', () => ping.get());
    },
    async close() {
      if (closed) return;
      closed = true;
      if (owned) db.close();
    },
  };
}

function toEntry(row: Row): InboxEntry {
  const entry: InboxEntry = {
    id: row.id,
    channel: row.channel,
    message: JSON.parse(row.message),
    status: row.status,
    partsSent: row.parts_sent,
    attempts: row.attempts,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
  if (row.reply !== null) entry.reply = JSON.parse(row.reply) as InboxReply;
  if (row.error !== null) entry.error = row.error;
  if (row.outcome !== null) entry.outcome = row.outcome;
  return entry;
}

function toJson(value: unknown): string {
  try {
    const json = JSON.stringify(value);
    if (json === undefined) throw new TypeError('undefined is not JSON');
    return json;
  } catch (err) {
    throw new ClawmeshError('INVALID_ARGUMENT', 'an inbox message and reply must be JSON-serializable', {
      cause: err,
    });
  }
}
