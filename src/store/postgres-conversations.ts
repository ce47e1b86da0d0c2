import type { QueryConfig, QueryResultRow } from 'pg';
import { ClawmeshError } from '../core/errors.ts';
import type { ChatMessage, ToolCall } from '../core/messages.ts';
import { checkFence, checkLimit, toStoredMessage } from './checks.ts';
import { closedGuard, type PostgresLocation, schemaOnce, statement, tableName } from './postgres-common.ts';
import { checkTurnId, turnAlreadyStored } from './turns.ts';
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

interface AppendRow {
  found: number | null;
  stored_fence: string | null;
  base: number | null;
  /** The messages of the stored turn with the append's turn id, when there is one. */
  turn_messages: MessageRow[] | null;
}

const COLUMNS = 'id, agent_id, channel, peer, created_at, updated_at, message_count';

/**
 * The PostgreSQL conversation store. Its tables are created on first use. An append is one
 * statement, so one transaction and one round trip: it locks the conversation's row
 * (`FOR UPDATE`), looks up its turn id, checks the fence, numbers the messages after the stored
 * count, inserts them and updates the row; a refused append writes nothing.
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
  // A turn's id and size sit on its first message; tables made before turn ids get the columns here.
  const turnIndex = `${options.tablePrefix ?? 'clawmesh_'}messages_turn_id`;
  const turnIndexName = `"${options.schema ?? 'public'}"."${turnIndex}"`;
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
      turn_id text,
      turn_size integer,
      PRIMARY KEY (conversation_id, seq)
    );
    DO $$ BEGIN
      IF NOT EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = '${messagesTable}'::regclass
          AND attname = 'turn_id' AND NOT attisdropped) THEN
        ALTER TABLE ${messagesTable} ADD COLUMN turn_id text, ADD COLUMN turn_size integer;
      END IF;
      IF to_regclass('${turnIndexName}') IS NULL THEN
        CREATE UNIQUE INDEX "${turnIndex}" ON ${messagesTable} (conversation_id, turn_id)
          WHERE turn_id IS NOT NULL;
      END IF;
    END $$;`,
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
  // $1 id, $2 fence (or null), $3 time, $4..$8 the messages' columns as arrays, $9 their count,
  // $10 the turn id (or null). The turn lookup reads the statement's snapshot, taken before the
  // row lock: a concurrent append of the same turn is caught by the unique index instead.
  const appendSql = statement(
    `WITH conv AS MATERIALIZED (
      SELECT id, message_count, fence, updated_at FROM ${conversations} WHERE id = $1 FOR UPDATE
    ), stored_turn AS MATERIALIZED (
      SELECT seq, turn_size FROM ${messagesTable}
      WHERE $10::text IS NOT NULL AND conversation_id = $1 AND turn_id = $10::text
    ), ok AS MATERIALIZED (
      SELECT * FROM conv
      WHERE ($2::bigint IS NULL OR fence IS NULL OR fence <= $2::bigint) AND NOT EXISTS (SELECT 1 FROM stored_turn)
    ), ins AS (
      INSERT INTO ${messagesTable}
        (conversation_id, seq, role, content, tool_calls, tool_call_id, name, at, turn_id, turn_size)
      SELECT ok.id, ok.message_count + m.ord, m.role, m.content, m.tool_calls, m.tool_call_id, m.name, $3::bigint,
        CASE WHEN m.ord = 1 THEN $10::text END,
        CASE WHEN m.ord = 1 AND $10::text IS NOT NULL THEN $9::integer END
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
    SELECT conv.message_count AS found, conv.fence AS stored_fence, (SELECT base FROM upd) AS base,
      (SELECT json_agg(json_build_object('seq', m.seq, 'role', m.role, 'content', m.content,
          'tool_calls', m.tool_calls, 'tool_call_id', m.tool_call_id, 'name', m.name, 'at', m.at) ORDER BY m.seq)
        FROM ${messagesTable} AS m, stored_turn AS t
        WHERE m.conversation_id = $1 AND m.seq BETWEEN t.seq AND t.seq + t.turn_size - 1) AS turn_messages
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
      checkTurnId(options.turnId);
      const { fence, turnId } = options;
      return guard.run('append messages', async () => {
        const at = Date.now();
        const values = [
          id,
          fence ?? null,
          at,
          messages.map((m) => m.role),
          messages.map((m) => m.content),
          messages.map((m) => (m.toolCalls === undefined ? null : JSON.stringify(m.toolCalls))),
          messages.map((m) => m.toolCallId ?? null),
          messages.map((m) => m.name ?? null),
          messages.length,
          turnId ?? null,
        ];
        let rows: AppendRow[];
        try {
          rows = await query<AppendRow>(appendSql, values);
        } catch (err) {
          // Another append of this turn committed after this statement's snapshot: run it again,
          // with a snapshot that sees the stored turn.
          if (turnId === undefined || !isUniqueViolation(err, turnIndex)) throw err;
          rows = await query<AppendRow>(appendSql, values);
        }
        const [row] = rows;
        if (!row || row.found === null)
          throw new ClawmeshError('NOT_FOUND', `no conversation with id "${id}"`);
        if (row.turn_messages !== null) throw turnAlreadyStored(id, turnId!, row.turn_messages.map(fromRow));
        if (row.base === null) {
          const storedFence = Number(row.stored_fence);
          throw new ClawmeshError('CONFLICT', `stale fence ${fence} < ${storedFence} on "${id}"`, {
            details: { reason: 'STALE_FENCE', conversationId: id, fence, storedFence },
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

function isUniqueViolation(err: unknown, constraint: string): boolean {
  const { code, constraint: violated } = (err ?? {}) as { code?: unknown; constraint?: unknown };
  return code === '23505' && violated === constraint;
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
