import type Database from 'better-sqlite3';
import { ClawmeshError } from '../core/errors.ts';
import type { ChatMessage, ToolCall } from '../core/messages.ts';
import { checkFence, checkLimit, toStoredMessage } from './checks.ts';
import { attachSqlite, guarded, type SqliteSource } from './sqlite.ts';
import { createGroupCommit } from './sqlite-batch.ts';
import { rowCacheOf } from './sqlite-row-cache.ts';
import { checkTurnId, turnAlreadyStored } from './turns.ts';
import type { AppendOptions, ConversationRecord, ConversationStore, StoredMessage } from './types.ts';

const SCHEMA = `
CREATE TABLE IF NOT EXISTS conversations (
  id TEXT PRIMARY KEY,
  agent_id TEXT NOT NULL,
  channel TEXT NOT NULL,
  peer TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  message_count INTEGER NOT NULL DEFAULT 0,
  fence INTEGER
) STRICT;
CREATE INDEX IF NOT EXISTS conversations_updated_at ON conversations (updated_at DESC);
CREATE TABLE IF NOT EXISTS messages (
  conversation_id TEXT NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
  seq INTEGER NOT NULL,
  role TEXT NOT NULL CHECK (role IN ('system', 'user', 'assistant', 'tool')),
  content TEXT NOT NULL,
  tool_calls TEXT,
  tool_call_id TEXT,
  name TEXT,
  at INTEGER NOT NULL,
  turn_id TEXT,
  turn_size INTEGER,
  PRIMARY KEY (conversation_id, seq)
) STRICT, WITHOUT ROWID;
`;

/*
 * A turn appended with a turn id carries it, and its message count, on its first message only.
 * Tables made before turn ids get the two columns at open; the index comes after them.
 */
const TURN_COLUMNS = [
  ['turn_id', 'TEXT'],
  ['turn_size', 'INTEGER'],
] as const;
const TURN_INDEX = `CREATE UNIQUE INDEX IF NOT EXISTS messages_turn_id ON messages (conversation_id, turn_id)
  WHERE turn_id IS NOT NULL`;

/** A conversation as selected: the record plus the highest fence written to it. */
type ConversationRow = ConversationRecord & { fence: number | null };

const RECORD_COLUMNS = `id, agent_id AS agentId, channel, peer, created_at AS createdAt, updated_at AS updatedAt,
  message_count AS messageCount, fence`;

interface MessageRow {
  seq: number;
  role: ChatMessage['role'];
  content: string;
  tool_calls: string | null;
  tool_call_id: string | null;
  name: string | null;
  at: number;
}

type NewConversation = Parameters<ConversationStore['ensure']>[0];

/** One append as the group commit queues it. */
interface AppendWrite {
  id: string;
  messages: readonly ChatMessage[];
  fence: number | undefined;
  turnId: string | undefined;
}

/**
 * The SQLite conversation store (the default on disk). Each `append` is one immediate
 * transaction, so writers in other processes on the same file serialize on it.
 *
 * @example
 * const conversations = createSqliteConversationStore({ path: './data/clawmesh.db' });
 */
export function createSqliteConversationStore(source: SqliteSource): ConversationStore {
  const { db, owned } = attachSqlite(source);
  // Immediate, so two processes opening one old file do not both add the columns.
  const createSchema = db.transaction(() => {
    db.exec(SCHEMA);
    const present = new Set(
      db
        .prepare<[], { name: string }>("SELECT name FROM pragma_table_info('messages')")
        .all()
        .map((c) => c.name),
    );
    for (const [column, type] of TURN_COLUMNS) {
      if (!present.has(column)) db.exec(`ALTER TABLE messages ADD COLUMN ${column} ${type}`);
    }
    db.exec(TURN_INDEX);
  });
  guarded('create conversation schema', () => createSchema.immediate());

  const selectOne = db.prepare<[string], ConversationRow>(
    `SELECT ${RECORD_COLUMNS} FROM conversations WHERE id = ?`,
  );
  const insertOne = db.prepare<[NewConversation & { now: number }]>(
    `INSERT INTO conversations (id, agent_id, channel, peer, created_at, updated_at)
     VALUES (@id, @agentId, @channel, @peer, @now, @now) ON CONFLICT (id) DO NOTHING`,
  );
  // One multi-row INSERT per append, prepared once for each row count seen; with a turn id, the
  // first row also carries the turn's id and size.
  const insertMessages = new Map<number, Database.Statement<unknown[]>>();
  const insertStatement = (rows: number, turn: boolean) => {
    const key = turn ? -rows : rows;
    let statement = insertMessages.get(key);
    if (!statement) {
      const row = (i: number) =>
        !turn ? '(?, ?, ?, ?, ?, ?, ?, ?)' : `(?, ?, ?, ?, ?, ?, ?, ?, ${i === 0 ? '?, ?' : 'NULL, NULL'})`;
      const values = Array.from({ length: rows }, (_, i) => row(i)).join(', ');
      const columns = `conversation_id, seq, role, content, tool_calls, tool_call_id, name, at${turn ? ', turn_id, turn_size' : ''}`;
      statement = db.prepare(`INSERT INTO messages (${columns}) VALUES ${values}`);
      insertMessages.set(key, statement);
    }
    return statement;
  };
  const selectTurn = db.prepare<[string, string], { seq: number; turn_size: number }>(
    'SELECT seq, turn_size FROM messages WHERE conversation_id = ? AND turn_id = ?',
  );
  const selectRange = db.prepare<[string, number, number], MessageRow>(
    `SELECT seq, role, content, tool_calls, tool_call_id, name, at FROM messages
     WHERE conversation_id = ? AND seq BETWEEN ? AND ? ORDER BY seq`,
  );
  const updateOne = db.prepare<[{ id: string; now: number; count: number; fence: number | null }]>(
    `UPDATE conversations SET updated_at = MAX(updated_at, @now), message_count = @count, fence = @fence
     WHERE id = @id`,
  );
  const selectMessages = db.prepare<[string, number], MessageRow>(
    `SELECT seq, role, content, tool_calls, tool_call_id, name, at FROM messages
     WHERE conversation_id = ? ORDER BY seq DESC LIMIT ?`,
  );
  const selectRecent = db.prepare<[number], ConversationRow>(
    `SELECT ${RECORD_COLUMNS} FROM conversations ORDER BY updated_at DESC, id LIMIT ?`,
  );
  const selectOneValue = db.prepare('SELECT 1');
  const rows = rowCacheOf<ConversationRow>(db, 'conversations');
  const readRow = (id: string) => rows.get(id, () => selectOne.get(id));

  const ensureTx = db.transaction((conversation: NewConversation, now: number): ConversationRow => {
    const { id, agentId, channel, peer } = conversation;
    insertOne.run({ id, agentId, channel, peer, now });
    return selectOne.get(id)!;
  });

  /**
   * One append: every check comes before the first write, so a refused append (unknown
   * conversation, stored turn, stale fence) writes nothing and its batch can go on without a
   * savepoint. An earlier append of the same batch is visible here: the batch is one transaction.
   */
  const applyAppend = ({ id, messages, fence, turnId }: AppendWrite): StoredMessage[] => {
    const row = readRow(id);
    if (!row) throw new ClawmeshError('NOT_FOUND', `no conversation with id "${id}"`);
    if (turnId !== undefined) {
      const turn = selectTurn.get(id, turnId);
      if (turn) {
        const first = selectRange.all(id, turn.seq, turn.seq + turn.turn_size - 1).map(fromRow);
        throw turnAlreadyStored(id, turnId, first);
      }
    }
    if (fence !== undefined && row.fence !== null && fence < row.fence)
      throw staleFence(id, fence, row.fence);
    const at = Date.now();
    const stored = messages.map((message, i) => toStoredMessage(message, row.messageCount + i + 1, at));
    if (stored.length > 0) {
      const values: unknown[] = [];
      for (const m of stored) {
        values.push(
          id,
          m.seq,
          m.role,
          m.content,
          m.toolCalls === undefined ? null : JSON.stringify(m.toolCalls),
        );
        values.push(m.toolCallId ?? null, m.name ?? null, m.at);
        if (turnId !== undefined && m === stored[0]) values.push(turnId, stored.length);
      }
      insertStatement(stored.length, turnId !== undefined).run(values);
    }
    const update = {
      id,
      now: stored.length > 0 ? at : row.updatedAt,
      count: row.messageCount + stored.length,
      fence: fence === undefined ? row.fence : Math.max(fence, row.fence ?? fence),
    };
    updateOne.run(update);
    rows.set(id, {
      ...row,
      updatedAt: Math.max(row.updatedAt, update.now),
      messageCount: update.count,
      fence: update.fence,
    });
    return stored;
  };

  const groupAppend = createGroupCommit(
    db,
    applyAppend,
    (fn) => guarded('append messages', fn),
    () => rows.clear(),
  );

  let closed = false;
  const run = <T>(what: string, fn: () => T): T => {
    if (closed) throw new ClawmeshError('UNAVAILABLE', `${what}: the store is closed`, { retryable: false });
    return guarded(what, fn);
  };

  return {
    kind: 'sqlite',
    async ensure(conversation) {
      const row = run('ensure conversation', () => ensureTx.immediate(conversation, Date.now()));
      rows.set(row.id, row);
      return toRecord(row);
    },
    async get(id) {
      const row = run('get conversation', () => readRow(id));
      return row ? toRecord(row) : undefined;
    },
    async append(id, messages, options: AppendOptions = {}) {
      checkFence(options.fence);
      checkTurnId(options.turnId);
      if (closed)
        throw new ClawmeshError('UNAVAILABLE', 'append messages: the store is closed', { retryable: false });
      return groupAppend({ id, messages, fence: options.fence, turnId: options.turnId });
    },
    async messages(id, limit) {
      checkLimit(limit);
      const rows = run('read messages', () => selectMessages.all(id, limit ?? -1));
      return rows.reverse().map(fromRow);
    },
    async recent(limit) {
      checkLimit(limit);
      return run('read recent conversations', () => selectRecent.all(limit)).map(toRecord);
    },
    async ping() {
      run('ping', () => selectOneValue.get());
    },
    async close() {
      if (closed) return;
      closed = true;
      if (owned) db.close();
    },
  };
}

function staleFence(id: string, fence: number, storedFence: number): ClawmeshError {
  return new ClawmeshError('CONFLICT', `stale fence ${fence} < ${storedFence} on "${id}"`, {
    details: { reason: 'STALE_FENCE', conversationId: id, fence, storedFence },
  });
}

function fromRow(row: MessageRow): StoredMessage {
  const stored: StoredMessage = { role: row.role, content: row.content, seq: row.seq, at: row.at };
  if (row.tool_calls !== null) stored.toolCalls = JSON.parse(row.tool_calls) as ToolCall[];
  if (row.tool_call_id !== null) stored.toolCallId = row.tool_call_id;
  if (row.name !== null) stored.name = row.name;
  return stored;
}

function toRecord({ fence: _fence, ...record }: ConversationRow): ConversationRecord {
  return record;
}
