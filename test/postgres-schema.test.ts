import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { randomHex } from '../src/core/ids.ts';
import { startTestApp, type TestApp } from './support/app.ts';

const DATABASE_URL = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const schema = `cm_schema_${randomHex(4)}`;
const pool = new pg.Pool({ connectionString: DATABASE_URL, max: 2 });
const apps: TestApp[] = [];

afterAll(async () => {
  for (const app of apps.splice(0)) await app.stop();
  await pool.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  await pool.end();
});

describe('postgres.schema and postgres.tablePrefix', () => {
  it('keep a deployment’s tables apart in a database it shares (CLAWMESH_POSTGRES__SCHEMA, __TABLE_PREFIX)', async () => {
    const app = await startTestApp(
      { store: { kind: 'postgres', lease: 'memory' } },
      {},
      {
        DATABASE_URL,
        CLAWMESH_POSTGRES__SCHEMA: schema,
        CLAWMESH_POSTGRES__TABLE_PREFIX: 'shop_',
      },
    );
    apps.push(app);
    const reply = await app.post('/v1/messages', { userId: 'u1', text: 'hello' });
    expect(reply.status).toBe(200);
    const { rows } = await pool.query<{ table_name: string }>(
      'select table_name from information_schema.tables where table_schema = $1 order by table_name',
      [schema],
    );
    // The dedupe table is made on its first use.
    expect(rows.map((row) => row.table_name)).toEqual(
      expect.arrayContaining(['shop_conversations', 'shop_messages']),
    );
    const messages = await pool.query(`select role from "${schema}".shop_messages order by seq`);
    expect(messages.rows.map((row) => row.role)).toEqual(['user', 'assistant']);
  });

  it('refuses a name that is not lower-case letters, digits and _', async () => {
    await expect(
      startTestApp(
        { store: { kind: 'postgres', lease: 'memory' } },
        {},
        { CLAWMESH_POSTGRES__SCHEMA: 'Shop-1' },
      ),
    ).rejects.toThrow(/postgres\.schema: must be lower-case letters, digits and _/);
  });
});
