import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createInboxStore } from './inbox.ts';
import { describeInboxStore } from './inbox-conformance.ts';
import { createMemoryInboxStore } from './inbox-memory.ts';
import { createSqliteInboxStore } from './inbox-sqlite.ts';
import { openSqlite } from './sqlite.ts';
import { createSqliteConversationStore } from './sqlite-conversations.ts';

describeInboxStore('memory', () => createMemoryInboxStore());
describeInboxStore('sqlite', () => createSqliteInboxStore({ path: ':memory:' }));

describe('SQLite inbox', () => {
  it('keeps unfinished entries across a reopen of the same file', async () => {
    const path = join(mkdtempSync(join(tmpdir(), 'clawmesh-inbox-')), 'clawmesh.db');
    const first = createSqliteInboxStore({ path });
    await first.add({ id: 'telegram:1:10', channel: 'telegram', message: { text: 'hi' } });
    await first.add({ id: 'telegram:1:11', channel: 'telegram', message: { text: 'again' } });
    await first.setReply('telegram:1:11', { parts: ['a', 'b'] });
    await first.progress('telegram:1:11', { partsSent: 1, attempts: 1 });
    await first.close();
    const second = createSqliteInboxStore({ path });
    const unfinished = await second.unfinished();
    expect(unfinished.map((e) => [e.id, e.status, e.partsSent])).toEqual([
      ['telegram:1:10', 'pending', 0],
      ['telegram:1:11', 'sending', 1],
    ]);
    await second.close();
  });

  it('shares the database file of the conversation store through its own connection', async () => {
    const path = join(mkdtempSync(join(tmpdir(), 'clawmesh-inbox-')), 'clawmesh.db');
    const db = openSqlite(path);
    const conversations = createSqliteConversationStore({ db });
    const inbox = createInboxStore({ kind: 'sqlite', path });
    await conversations.ensure({ id: 'c1', agentId: 'a', channel: 'slack', peer: 'U1' });
    expect(await inbox.add({ id: 'slack:T1:Ev1', channel: 'slack', message: { text: 'x' } })).toBe(true);
    const tables = db
      .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'channel_inbox'")
      .all();
    expect(tables).toHaveLength(1);
    await inbox.close();
    await conversations.close();
    db.close();
  });

  it('leaves a connection it was given open on close', async () => {
    const db = openSqlite(':memory:');
    const inbox = createSqliteInboxStore({ db });
    await inbox.close();
    expect(db.open).toBe(true);
    db.close();
  });
});

describe('memory inbox', () => {
  it('evicts the oldest done entries past maxEntries, never unfinished ones', async () => {
    const inbox = createMemoryInboxStore({ maxEntries: 2 });
    await inbox.add({ id: 'a', channel: 'c', message: 1 });
    await inbox.finish('a', 'replied');
    await inbox.add({ id: 'b', channel: 'c', message: 2 });
    await inbox.add({ id: 'c', channel: 'c', message: 3 });
    expect(await inbox.get('a')).toBeUndefined();
    await inbox.add({ id: 'd', channel: 'c', message: 4 });
    expect((await inbox.unfinished()).map((e) => e.id)).toEqual(['b', 'c', 'd']);
  });
});

describe('createInboxStore', () => {
  it('refuses an unknown kind and an SQLite inbox without a path with INVALID_ARGUMENT', () => {
    expect(() => createInboxStore({ kind: 'redis' as 'memory' })).toThrow(/unknown inbox kind "redis"/);
    expect(() => createInboxStore({ kind: 'sqlite' })).toThrow(/needs a path/);
  });
});
