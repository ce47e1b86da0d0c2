import type { QueryConfig, QueryResultRow } from 'pg';
import { ClawmeshError } from '../core/errors.ts';
import type { ChatMessage, ToolCall } from '../core/messages.ts';
import { checkFence, checkLimit, toStoredMessage } from './checks.ts';
import { closedGuard, type PostgresLocation, schemaOnce, statement, tableName } from './postgres-common.ts';
import type { AppendOptions, ConversationRecord, ConversationStore, StoredMessage } from './types.ts';

/** Options of {@link createPostgresConversationStore}. */
export type PostgresConversationOptions = PostgresLocation;

interface RecordRow {
  id: string;
  agent_id: string;
  channel: string;
  peer: string;
  created_at: string;
  updated_at: string;
  message_count: number;
}

interface MessageRow {
  seq: number;
  role: ChatMessage['role'];
  content: string;
  tool_calls: string | null;
  tool_call_id: string | null;
  name: string | null;
  at: string;
}

const COLUMNS = 'id, agent_id, channel, peer, created_at, updated_at, message_count';

/**
 * The PostgreSQL conversation store. Its tables are created on first use. An append is one
 * statement, so one transaction and one round trip: it locks the conversation's row
 * (`FOR UPDATE`), checks the fence, numbers the messages after the stored count, inserts them
 * and updates the row; a refused append writes nothing.
 *
 * @example
 * const pool = new pg.Pool({ connectionString: process.env.DATABASE_URL });
 * const conversations = createPostgresConversationStore({ pool, schema: 'clawmesh' });
 */
export function createPostgresConversationStore(options: PostgresConversationOptions): ConversationStore {
  const { pool } = options;
  const conversations = tableName(options, 'conversations');
  const messagesTable = tableName(options, 'messages');
  const indexName = `${options.tablePrefix ?? 'clawmesh_'}conversations_updated_at`;
  const ready = schemaOnce(
    options,
    `CREATE TABLE IF NOT EXISTS ${conversations} (
      id text PRIMARY KEY,
      agent_id text NOT NULL,
      channel text NOT NULL,
      peer text NOT NULL,
      created_at bigint NOT NULL,
      updated_at bigint NOT NULL,
      message_count integer NOT NULL DEFAULT 0,
      fence bigint
    );
    CREATE INDEX IF NOT EXISTS "${indexName}" ON ${conversations} (updated_at DESC, id);
    CREATE TABLE IF NOT EXISTS ${messagesTable} (
      conversation_id text NOT NULL REFERENCES ${conversations} (id) ON DELETE CASCADE,
      seq integer NOT NULL,
      role text NOT NULL CHECK (role IN ('system', 'user', 'assistant', 'tool')),
      content text NOT NULL,
      tool_calls text,
      tool_call_id text,
      name text,
      at bigint NOT NULL,
      PRIMARY KEY (conversation_id, seq)
    );`,
  );

  const ensureSql = statement(
    `WITH ins AS (
      INSERT INTO ${conversations} (id, agent_id, channel, peer, created_at, updated_at)
      VALUES ($1, $2, $3, $4, $5, $5) ON CONFLICT (id) DO NOTHING RETURNING ${COLUMNS}
    )
    SELECT ${COLUMNS} FROM ins
    UNION ALL SELECT ${COLUMNS} FROM ${conversations} WHERE id = $1 AND NOT EXISTS (SELECT 1 FROM ins)`,
  );
  const getSql = statement(`SELECT ${COLUMNS} FROM ${conversations} WHERE id = $1`);
  // $1 id, $2 fence (or null), $3 time, $4..$8 the messages' columns as arrays, $9 their count.
  const appendSql = statement(
    `WITH conv AS MATERIALIZED (
      SELECT id, message_count, fence, updated_at FROM ${conversations} WHERE id = $1 FOR UPDATE
    ), ok AS MATERIALIZED (
      SELECT * FROM conv WHERE $2::bigint IS NULL OR fence IS NULL OR fence <= $2::bigint
    ), ins AS (
      INSERT INTO ${messagesTable} (conversation_id, seq, role, content, tool_calls, tool_call_id, name, at)
      SELECT ok.id, ok.message_count + m.ord, m.role, m.content, m.tool_calls, m.tool_call_id, m.name, $3::bigint
      FROM ok, unnest($4::text[], $5::text[], $6::text[], $7::text[], $8::text[])
        WITH ORDINALITY AS m (role, content, tool_calls, tool_call_id, name, ord)
    ), upd AS (
      UPDATE ${conversations} AS c SET
        message_count = ok.message_count + $9::integer,
        updated_at = CASE WHEN $9::integer > 0 THEN GREATEST(ok.updated_at, $3::bigint) ELSE ok.updated_at END,
        fence = CASE WHEN $2::bigint IS NULL THEN ok.fence ELSE GREATEST(ok.fence, $2::bigint) END
      FROM ok WHERE c.id = ok.id
      RETURNING ok.message_count AS base
    )
    SELECT conv.message_count AS found, conv.fence AS stored_fence, (SELECT base FROM upd) AS base
    FROM (SELECT 1) AS one LEFT JOIN conv ON true`,
  );
  const messagesSql = statement(
    `SELECT seq, role, content, tool_calls, tool_call_id, name, at FROM ${messagesTable}
     WHERE conversation_id = $1 ORDER BY seq DESC LIMIT $2`,
  );
  const recentSql = statement(
    `SELECT ${COLUMNS} FROM ${conversations} ORDER BY updated_at DESC, id LIMIT $1`,
  );

  const guard = closedGuard();
  const query = async <R extends QueryResultRow>(sql: QueryConfig, values: unknown[]): Promise<R[]> => {
    await ready();
    return (await pool.query<R>({ ...sql, values })).rows;
  };

  return {
    kind: 'postgres',
    ensure({ id, agentId, channel, peer }) {
      return guard.run('ensure conversation', async () => {
        const [row] = await query<RecordRow>(ensureSql, [id, agentId, channel, peer, Date.now()]);
        // A concurrent insert of the same id is not visible to the statement that lost the race.
        const found = row ?? (await query<RecordRow>(getSql, [id]))[0];
        if (!found) throw new ClawmeshError('INTERNAL', `conversation "${id}" vanished while it was created`);
        return toRecord(found);
      });
    },
    get(id) {
      return guard.run('get conversation', async () => {
        const [row] = await query<RecordRow>(getSql, [id]);
        return row ? toRecord(row) : undefined;
      });
    },
    async append(id, messages, options: AppendOptions = {}) {
      checkFence(options.fence);
      const { fence } = options;
      return guard.run('append messages', async () => {
        const at = Date.now();
        const [row] = await query<{ found: number | null; stored_fence: string | null; base: number | null }>(
          appendSql,
          [
            id,
            fence ?? null,
            at,
            messages.map((m) => m.role),
            messages.map((m) => m.content),
            messages.map((m) => (m.toolCalls === undefined ? null : JSON.stringify(m.toolCalls))),
            messages.map((m) => m.toolCallId ?? null),
            messages.map((m) => m.name ?? null),
            messages.length,
          ],
        );
        if (!row || row.found === null)
          throw new ClawmeshError('NOT_FOUND', `no conversation with id "${id}"`);
        if (row.base === null) {
          const storedFence = Number(row.stored_fence);
          throw new ClawmeshError('CONFLICT', `stale fence ${fence} < ${storedFence} on "${id}"`, {
            details: { conversationId: id, fence, storedFence },
          });
        }
        const base = row.base;
        return messages.map((message, i) => toStoredMessage(message, base + i + 1, at));
      });
    },
    async messages(id, limit) {
      checkLimit(limit);
      const rows = await guard.run('read messages', () =>
        query<MessageRow>(messagesSql, [id, limit ?? null]),
      );
      return rows.reverse().map(fromRow);
    },
    async recent(limit) {
      checkLimit(limit);
      const rows = await guard.run('read recent conversations', () => query<RecordRow>(recentSql, [limit]));
      return rows.map(toRecord);
    },
    ping() {
      return guard.run('ping', async () => {
        await pool.query('SELECT 1');
      });
    },
    async close() {
      guard.close();
    },
  };
}

function toRecord(row: RecordRow): ConversationRecord {
  return {
    id: row.id,
    agentId: row.agent_id,
    channel: row.channel,
    peer: row.peer,
    createdAt: Number(row.created_at),
    updatedAt: Number(row.updated_at),
    messageCount: row.message_count,
  };
}

function fromRow(row: MessageRow): StoredMessage {
  const stored: StoredMessage = { role: row.role, content: row.content, seq: row.seq, at: Number(row.at) };
  if (row.tool_calls !== null) stored.toolCalls = JSON.parse(row.tool_calls) as ToolCall[];
  if (row.tool_call_id !== null) stored.toolCallId = row.tool_call_id;
  if (row.name !== null) stored.name = row.name;
  return stored;
}
