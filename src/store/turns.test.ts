import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { createClient } from 'redis';
import { afterAll, describe, expect, it } from 'vitest';
import { ClawmeshError } from '../core/errors.ts';
import { createPostgresConversationStore } from './postgres-conversations.ts';
import { createRedisConversationStore } from './redis-conversations.ts';
import { openSqlite } from './sqlite.ts';
import { createSqliteConversationStore } from './sqlite-conversations.ts';
import { isTurnAlreadyStored } from './turns.ts';
import type { ConversationStore } from './types.ts';

// Turn ids on tables made before them, and across reopening; the conformance suite covers the rest.

const DATABASE_URL = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const dir = mkdtempSync(join(tmpdir(), 'clawmesh-turns-'));
const schema = `clawmesh_turns_${randomBytes(6).toString('hex')}`;
const pool = new pg.Pool({ connectionString: DATABASE_URL, max: 8 });
const redis = createClient({ url: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379' });
const prefix = `clawmesh-turns-${randomBytes(6).toString('hex')}:`;

afterAll(async () => {
  rmSync(dir, { recursive: true, force: true });
  await pool.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  await pool.end();
  if (redis.isOpen) {
    for await (const keys of redis.scanIterator({ MATCH: `${prefix}*` }))
      if (keys.length) await redis.del(keys);
    await redis.close();
  }
});

/** Appends a turn to `c1` twice, expecting the second to be refused with what the first stored. */
async function appendTwice(store: ConversationStore, turnId: string) {
  const first = await store.append('c1', [{ role: 'user', content: `${turnId} once` }], { turnId });
  const err = await store.append('c1', [{ role: 'user', content: 'twice' }], { turnId }).catch((e) => e);
  expect(isTurnAlreadyStored(err)).toBe(true);
  expect(err.details.messages).toStrictEqual(first);
  return first;
}

describe('turn ids', () => {
  it('tells a stored turn from other conflicts, also after the error crossed a transport', () => {
    const stored = new ClawmeshError('CONFLICT', 'stored', {
      details: { reason: 'TURN_ALREADY_STORED', conversationId: 'c', turnId: 't', messages: [] },
    });
    expect(isTurnAlreadyStored(stored)).toBe(true);
    expect(isTurnAlreadyStored(ClawmeshError.fromJSON(JSON.parse(JSON.stringify(stored))))).toBe(true);
    const stale = new ClawmeshError('CONFLICT', 'stale', { details: { reason: 'STALE_FENCE' } });
    expect(isTurnAlreadyStored(stale)).toBe(false);
    expect(isTurnAlreadyStored(new Error('CONFLICT'))).toBe(false);
  });

  it('adds turn ids to an SQLite database made before them, and remembers them after reopening', async () => {
    const path = join(dir, 'old.db');
    const db = openSqlite(path);
    db.exec(`
      CREATE TABLE conversations (id TEXT PRIMARY KEY, agent_id TEXT NOT NULL, channel TEXT NOT NULL,
        peer TEXT NOT NULL, created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL,
        message_count INTEGER NOT NULL DEFAULT 0, fence INTEGER) STRICT;
      CREATE TABLE messages (conversation_id TEXT NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
        seq INTEGER NOT NULL, role TEXT NOT NULL, content TEXT NOT NULL, tool_calls TEXT, tool_call_id TEXT,
        name TEXT, at INTEGER NOT NULL, PRIMARY KEY (conversation_id, seq)) STRICT, WITHOUT ROWID;
      INSERT INTO conversations VALUES ('c1', 'a', 'web', 'p', 1, 1, 1, NULL);
      INSERT INTO messages VALUES ('c1', 1, 'user', 'old', NULL, NULL, NULL, 1);`);
    db.close();

    const first = createSqliteConversationStore({ path });
    expect((await first.messages('c1')).map((m) => m.content)).toEqual(['old']);
    const stored = await appendTwice(first, 'm1');
    expect(stored[0]!.seq).toBe(2);
    await first.close();

    const second = createSqliteConversationStore({ path });
    const err = await second
      .append('c1', [{ role: 'user', content: 'again' }], { turnId: 'm1' })
      .catch((e) => e);
    expect(err.details.messages).toStrictEqual(stored);
    expect((await appendTwice(second, 'm2'))[0]!.seq).toBe(3);
    await second.close();
  });

  it('adds turn ids to PostgreSQL tables made before them, and remembers them in a new store', async () => {
    const tablePrefix = `t${randomBytes(3).toString('hex')}_`;
    const t = (name: string) => `"${schema}"."${tablePrefix}${name}"`;
    await pool.query(`CREATE SCHEMA IF NOT EXISTS "${schema}"`);
    await pool.query(`
      CREATE TABLE ${t('conversations')} (id text PRIMARY KEY, agent_id text NOT NULL, channel text NOT NULL,
        peer text NOT NULL, created_at bigint NOT NULL, updated_at bigint NOT NULL,
        message_count integer NOT NULL DEFAULT 0, fence bigint);
      CREATE TABLE ${t('messages')} (conversation_id text NOT NULL REFERENCES ${t('conversations')} (id),
        seq integer NOT NULL, role text NOT NULL, content text NOT NULL, tool_calls text, tool_call_id text,
        name text, at bigint NOT NULL, PRIMARY KEY (conversation_id, seq));
      INSERT INTO ${t('conversations')} VALUES ('c1', 'a', 'web', 'p', 1, 1, 1, NULL);
      INSERT INTO ${t('messages')} VALUES ('c1', 1, 'user', 'old', NULL, NULL, NULL, 1);`);

    const first = createPostgresConversationStore({ pool, schema, tablePrefix });
    expect((await first.messages('c1')).map((m) => m.content)).toEqual(['old']);
    const stored = await appendTwice(first, 'm1');
    expect(stored[0]!.seq).toBe(2);

    const second = createPostgresConversationStore({ pool, schema, tablePrefix });
    const err = await second
      .append('c1', [{ role: 'user', content: 'again' }], { turnId: 'm1' })
      .catch((e) => e);
    expect(err.details.messages).toStrictEqual(stored);
    expect((await appendTwice(second, 'm2'))[0]!.seq).toBe(3);
    const { rows } = await pool.query(
      `SELECT count(*)::int AS n FROM pg_indexes WHERE schemaname = $1 AND indexname = $2`,
      [schema, `${tablePrefix}messages_turn_id`],
    );
    expect(rows).toEqual([{ n: 1 }]);
  });

  it('keeps Redis turn ids in one hash per conversation, written only by appends that carry one', async () => {
    await redis.connect();
    const store = createRedisConversationStore({ client: redis, prefix });
    await store.ensure({ id: 'c1', agentId: 'a', channel: 'web', peer: 'p' });
    await store.append('c1', [{ role: 'user', content: 'plain' }]);
    expect(await redis.exists(`${prefix}conv:c1:turns`)).toBe(0);
    await appendTwice(store, 'm1');
    await store.append(
      'c1',
      [
        { role: 'user', content: 'q' },
        { role: 'assistant', content: 'a' },
      ],
      { turnId: 'm2' },
    );
    expect(await redis.hGetAll(`${prefix}conv:c1:turns`)).toEqual({ m1: '2:1', m2: '3:2' });
  });

  it('stores a PostgreSQL turn once when two pools race to append it', async () => {
    const other = new pg.Pool({ connectionString: DATABASE_URL, max: 8 });
    // Open the connections first, so the appends reach the server together and wait on the row lock.
    await Promise.all(
      [pool, other].flatMap((p) => Array.from({ length: 8 }, () => p.query('SELECT pg_sleep(0.02)'))),
    );
    const stores = [pool, other].map((p) => createPostgresConversationStore({ pool: p, schema }));
    for (let round = 0; round < 10; round++) {
      const { id } = await stores[0]!.ensure({ id: `race-${round}`, agentId: 'a', channel: 'c', peer: 'p' });
      const results = await Promise.allSettled(
        Array.from({ length: 12 }, (_, i) =>
          stores[i % 2]!.append(id, [{ role: 'user', content: `q${i}` }], { turnId: 'raced' }),
        ),
      );
      const won = results.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
      expect(won).toHaveLength(1);
      for (const r of results) {
        if (r.status === 'rejected')
          expect(isTurnAlreadyStored(r.reason) && r.reason.details.messages).toStrictEqual(won[0]);
      }
      expect(await stores[1]!.messages(id)).toStrictEqual(won[0]);
    }
    await other.end();
  });
});
