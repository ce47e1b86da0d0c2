import { randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { describeConversationStore, describeDedupeStore } from './conformance.ts';
import { createStores } from './index.ts';
import { openSqlite } from './sqlite.ts';
import { createSqliteConversationStore } from './sqlite-conversations.ts';
import { createSqliteDedupeStore } from './sqlite-dedupe.ts';

const dir = mkdtempSync(join(tmpdir(), 'clawmesh-store-'));
const file = join(dir, 'nested', 'clawmesh.db');
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describeConversationStore('sqlite file', () => createSqliteConversationStore({ path: file }));
describeConversationStore('sqlite :memory:', () => createSqliteConversationStore({ path: ':memory:' }));
describeDedupeStore('sqlite file', () => createSqliteDedupeStore({ path: file }));
describeDedupeStore('sqlite :memory:', () => createSqliteDedupeStore({ path: ':memory:' }));

describe('sqlite stores', () => {
  it('creates the parent directory and keeps data across close and reopen', async () => {
    const path = join(dir, randomUUID(), 'deeper', 'state.db');
    const first = createStores({ kind: 'sqlite', path });
    expect(existsSync(path)).toBe(true);
    const record = await first.conversations.ensure({ id: 'c1', agentId: 'a', channel: 'web', peer: 'p' });
    const written = await first.conversations.append(
      'c1',
      [
        { role: 'assistant', content: '', toolCalls: [{ id: 't1', name: 's__t', arguments: '{}' }] },
        { role: 'tool', content: 'ok', toolCallId: 't1', name: 's__t' },
      ],
      { fence: 3 },
    );
    await first.dedupe.claim('k1', 60_000);
    await first.dedupe.complete('k1', { reply: 'hi' }, 60_000);
    await first.close();

    const second = createStores({ kind: 'sqlite', path });
    expect(await second.conversations.get('c1')).toEqual({
      ...record,
      updatedAt: written[0]!.at,
      messageCount: 2,
    });
    expect(await second.conversations.messages('c1')).toStrictEqual(written);
    await expect(
      second.conversations.append('c1', [{ role: 'user', content: 'stale' }], { fence: 2 }),
    ).rejects.toMatchObject({ code: 'CONFLICT' });
    expect(await second.dedupe.claim('k1', 60_000)).toEqual({ state: 'done', value: { reply: 'hi' } });
    await second.close();
  });

  it('leaves a database it was given open on close', async () => {
    const db = openSqlite(':memory:');
    const store = createSqliteConversationStore({ db });
    await store.close();
    expect(db.open).toBe(true);
    await expect(store.ping()).rejects.toMatchObject({ code: 'UNAVAILABLE' });
    db.close();
  });

  it('deletes expired dedupe rows as claims arrive', async () => {
    const db = openSqlite(':memory:');
    const dedupe = createSqliteDedupeStore({ db, cleanupIntervalMs: 0 });
    for (let i = 0; i < 10; i++) await dedupe.claim(`old-${i}`, 20);
    await new Promise((resolve) => setTimeout(resolve, 50));
    await dedupe.claim('fresh', 60_000);
    expect(db.prepare('SELECT key FROM dedupe').pluck().all()).toEqual(['fresh']);
    await dedupe.close();
    db.close();
  });

  it('commits the appends of one tick together, refusing only the bad ones', async () => {
    const store = createSqliteConversationStore({ path: ':memory:' });
    await store.ensure({ id: 'a', agentId: 'x', channel: 'c', peer: 'p' });
    await store.ensure({ id: 'b', agentId: 'x', channel: 'c', peer: 'q' });
    await store.append('b', [{ role: 'user', content: 'fenced' }], { fence: 5 });
    const results = await Promise.allSettled([
      store.append('a', [{ role: 'user', content: 'one' }]),
      store.append('missing', [{ role: 'user', content: 'lost' }]),
      store.append('b', [{ role: 'user', content: 'stale' }], { fence: 4 }),
      store.append('a', [{ role: 'assistant', content: 'two' }]),
    ]);
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'rejected', 'fulfilled']);
    expect((results[1] as PromiseRejectedResult).reason.code).toBe('NOT_FOUND');
    expect((results[2] as PromiseRejectedResult).reason.code).toBe('CONFLICT');
    expect((await store.messages('a')).map((m) => [m.seq, m.content])).toEqual([
      [1, 'one'],
      [2, 'two'],
    ]);
    expect((await store.messages('b')).map((m) => m.content)).toEqual(['fenced']);
    await store.close();
  });

  it('reads a conversation written by another connection, never a row kept from before', async () => {
    const path = join(dir, `${randomUUID()}.db`);
    const mine = createSqliteConversationStore({ path });
    const other = createSqliteConversationStore({ path });
    await mine.ensure({ id: 'c', agentId: 'a', channel: 'web', peer: 'p' });
    await mine.append('c', [{ role: 'user', content: 'one' }], { fence: 1 });
    expect(await mine.get('c')).toMatchObject({ messageCount: 1 });

    await other.append('c', [{ role: 'user', content: 'two' }], { fence: 2 });
    expect(await mine.get('c')).toMatchObject({ messageCount: 2 });
    // The fence the other connection wrote holds here too, and the next seq follows its message.
    await expect(mine.append('c', [{ role: 'user', content: 'stale' }], { fence: 1 })).rejects.toMatchObject({
      code: 'CONFLICT',
    });
    const [third] = await mine.append('c', [{ role: 'user', content: 'three' }], { fence: 2 });
    expect(third!.seq).toBe(3);
    expect(await other.get('c')).toMatchObject({ messageCount: 3 });
    await Promise.all([mine.close(), other.close()]);
  });

  it('shares what it knows of a row between the stores of one connection', async () => {
    const db = openSqlite(':memory:');
    const first = createSqliteConversationStore({ db });
    const second = createSqliteConversationStore({ db });
    await first.ensure({ id: 'c', agentId: 'a', channel: 'web', peer: 'p' });
    expect(await second.get('c')).toMatchObject({ messageCount: 0 });
    await first.append('c', [{ role: 'user', content: 'one' }]);
    // Writes on the same connection leave data_version alone: the shared rows carry them.
    expect(await second.get('c')).toMatchObject({ messageCount: 1 });
    db.close();
  });

  it('forgets rows written in a batch that was rolled back', async () => {
    const db = openSqlite(':memory:');
    const store = createSqliteConversationStore({ db });
    await store.ensure({ id: 'c', agentId: 'a', channel: 'web', peer: 'p' });
    await store.ensure({ id: 'd', agentId: 'a', channel: 'web', peer: 'q' });
    // A write that fails inside SQLite rolls back the batch, 'c' included, after 'c' was applied;
    // each is then committed on its own.
    db.exec(`CREATE TRIGGER refuse AFTER INSERT ON messages WHEN NEW.content = 'boom'
      BEGIN SELECT RAISE(ABORT, 'refused'); END`);
    const [ok, failed] = await Promise.allSettled([
      store.append('c', [{ role: 'user', content: 'one' }]),
      store.append('d', [{ role: 'user', content: 'boom' }]),
    ]);
    expect(ok).toMatchObject({ status: 'fulfilled', value: [{ seq: 1 }] });
    expect(failed).toMatchObject({ status: 'rejected', reason: { code: 'INTERNAL' } });
    expect(await store.get('c')).toMatchObject({ messageCount: 1 });
    expect((await store.messages('c')).map((m) => m.seq)).toEqual([1]);
    db.close();
  });

  it('rejects an unknown store kind with INVALID_ARGUMENT naming it', () => {
    const make = () => createStores({ kind: 'redis' as 'memory' });
    expect(make).toThrow(
      expect.objectContaining({ code: 'INVALID_ARGUMENT', message: expect.stringContaining('redis') }),
    );
  });
});
