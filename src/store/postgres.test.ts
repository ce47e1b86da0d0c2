import { randomBytes, randomUUID } from 'node:crypto';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { describeConversationStore, describeDedupeStore } from './conformance.ts';
import { createStores } from './index.ts';
import { createPostgresConversationStore } from './postgres-conversations.ts';
import { createPostgresDedupeStore } from './postgres-dedupe.ts';

const DATABASE_URL = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const schema = `clawmesh_test_${randomBytes(6).toString('hex')}`;
const pool = new pg.Pool({ connectionString: DATABASE_URL, max: 8 });

afterAll(async () => {
  await pool.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  await pool.end();
});

describeConversationStore('postgres', () => createPostgresConversationStore({ pool, schema }));
describeDedupeStore('postgres', () => createPostgresDedupeStore({ pool, schema }));

describe('postgres stores', () => {
  it('creates its tables once when many stores start at the same time', async () => {
    const tablePrefix = `t${randomBytes(3).toString('hex')}_`;
    const stores = Array.from({ length: 6 }, () =>
      createPostgresConversationStore({ pool, schema, tablePrefix }),
    );
    const records = await Promise.all(
      stores.map((store, i) => store.ensure({ id: `c${i}`, agentId: 'a', channel: 'web', peer: 'p' })),
    );
    expect(records.map((r) => r.id)).toEqual(['c0', 'c1', 'c2', 'c3', 'c4', 'c5']);
    const { rows } = await pool.query(
      'SELECT table_name FROM information_schema.tables WHERE table_schema = $1 AND table_name LIKE $2 ORDER BY 1',
      [schema, `${tablePrefix}%`],
    );
    expect(rows.map((r) => r.table_name)).toEqual([`${tablePrefix}conversations`, `${tablePrefix}messages`]);
  });

  it('keeps appends of two pools to one conversation in one gapless sequence', async () => {
    const other = new pg.Pool({ connectionString: DATABASE_URL, max: 4 });
    const a = createPostgresConversationStore({ pool, schema });
    const b = createPostgresConversationStore({ pool: other, schema });
    const { id } = await a.ensure({ id: randomUUID(), agentId: 'a', channel: 'c', peer: 'p' });
    const writes = Array.from({ length: 30 }, (_, i) =>
      (i % 2 === 0 ? a : b).append(id, [
        { role: 'user', content: `q${i}` },
        { role: 'assistant', content: `a${i}` },
      ]),
    );
    const results = await Promise.all(writes);
    // Each append's two messages sit next to each other.
    for (const [question, answer] of results) expect(answer!.seq).toBe(question!.seq + 1);
    const stored = await b.messages(id);
    expect(stored.map((m) => m.seq)).toEqual(Array.from({ length: 60 }, (_, i) => i + 1));
    expect((await a.get(id))?.messageCount).toBe(60);
    await other.end();
  });

  it('deletes expired dedupe rows as claims arrive', async () => {
    const tablePrefix = `t${randomBytes(3).toString('hex')}_`;
    const dedupe = createPostgresDedupeStore({ pool, schema, tablePrefix, cleanupIntervalMs: 0 });
    for (let i = 0; i < 5; i++) await dedupe.claim(`old-${i}`, 20);
    await new Promise((resolve) => setTimeout(resolve, 50));
    await dedupe.claim('fresh', 60_000);
    await dedupe.close(); // waits for the background cleanup
    const { rows } = await pool.query(`SELECT key FROM "${schema}"."${tablePrefix}dedupe" ORDER BY key`);
    expect(rows.map((r) => r.key)).toEqual(['fresh']);
  });

  it('rejects a schema or table prefix that is not a plain identifier', () => {
    expect(() => createPostgresConversationStore({ pool, schema: 'x"; DROP TABLE y; --' })).toThrow(
      expect.objectContaining({ code: 'INVALID_ARGUMENT' }),
    );
    expect(() => createPostgresDedupeStore({ pool, tablePrefix: 'Bad-' })).toThrow(
      expect.objectContaining({ code: 'INVALID_ARGUMENT' }),
    );
  });

  it('fails with UNAVAILABLE when the server cannot be reached', async () => {
    const offline = new pg.Pool({ connectionString: 'postgres://postgres@127.0.0.1:1/test' });
    const store = createPostgresConversationStore({ pool: offline, schema });
    await expect(store.ping()).rejects.toMatchObject({ code: 'UNAVAILABLE' });
    await expect(store.get('x')).rejects.toMatchObject({ code: 'UNAVAILABLE' });
    await offline.end();
  });
});

describe('createStores (postgres)', () => {
  it('connects from a connection string and ends the pool it made on close', async () => {
    const stores = createStores({ kind: 'postgres', postgres: DATABASE_URL, schema });
    expect([stores.conversations.kind, stores.dedupe.kind]).toEqual(['postgres', 'postgres']);
    const id = randomUUID();
    await stores.conversations.ensure({ id, agentId: 'a', channel: 'c', peer: 'p' });
    expect(await stores.dedupe.claim(id, 1000)).toEqual({ state: 'claimed' });
    await stores.close();
    await expect(stores.conversations.get(id)).rejects.toMatchObject({ code: 'UNAVAILABLE' });
    const { rows } = await pool.query(`SELECT id FROM "${schema}".clawmesh_conversations WHERE id = $1`, [
      id,
    ]);
    expect(rows).toHaveLength(1);
  });

  it('leaves a pool it was given open', async () => {
    const own = new pg.Pool({ connectionString: DATABASE_URL, max: 2 });
    const stores = createStores({ kind: 'postgres', postgres: own, schema });
    await stores.conversations.ping();
    await stores.close();
    expect((await own.query('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
    await own.end();
  });
});
