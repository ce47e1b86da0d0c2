import { existsSync, mkdtempSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { openSqlite } from './sqlite.ts';
import { startCheckpointer as startFromSources } from './sqlite-checkpointer.ts';

/** The built module (`npm test` builds first): its checkpoint thread's file is beside it. */
const built = new URL('../../dist/src/store/sqlite-checkpointer.js', import.meta.url);

/** The built module, and a fresh database file with one table `t` to write into. */
async function builtWithDatabase(name: string) {
  const module = (await import(built.href)) as typeof import('./sqlite-checkpointer.ts');
  const path = join(mkdtempSync(join(tmpdir(), 'clawmesh-ckpt-')), name);
  const db = openSqlite(path);
  db.exec('CREATE TABLE t (id INTEGER PRIMARY KEY, body TEXT NOT NULL)');
  return { ...module, path, db };
}

describe('startCheckpointer', () => {
  it('leaves the writer checkpointing itself when the thread is not built (TypeScript sources) or the database is in memory', () => {
    const dir = mkdtempSync(join(tmpdir(), 'clawmesh-ckpt-'));
    const db = openSqlite(join(dir, 'a.db'));
    expect(startFromSources(db, join(dir, 'a.db'))).toBeUndefined();
    expect(db.pragma('wal_autocheckpoint', { simple: true })).toBe(1000);
    db.close();
    const memory = openSqlite(':memory:');
    expect(startFromSources(memory, ':memory:')).toBeUndefined();
    memory.close();
  });

  it('starts the thread only once the database is being written', async () => {
    const { checkpointWhenWritten, path, db } = await builtWithDatabase('lazy.db');
    const lazy = checkpointWhenWritten(db, path, { checkEveryMs: 10 });
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(lazy.started).toBeUndefined();
    expect(db.pragma('wal_autocheckpoint', { simple: true })).toBe(1000);
    const insert = db.prepare('INSERT INTO t (body) VALUES (?)');
    db.transaction(() => {
      for (let i = 0; i < 1000; i += 1) insert.run('z'.repeat(3000));
    })();
    await vi.waitFor(() => expect(lazy.started).toBeDefined(), { timeout: 2000, interval: 10 });
    expect(db.pragma('wal_autocheckpoint', { simple: true })).toBe(0);
    await lazy.stop();
    expect(db.pragma('wal_autocheckpoint', { simple: true })).toBe(1000);
    db.close();
  });

  it('keeps the WAL from growing under steady writes by having it started over', async () => {
    const { startCheckpointer, path, db } = await builtWithDatabase('steady.db');
    const checkpointer = startCheckpointer(db, path, { everyMs: 10, restartAtPages: 64 });
    const insert = db.prepare('INSERT INTO t (body) VALUES (?)');
    // About 1.5 s of small commits, never a pause long enough for the log to be all copied: a
    // millisecond between bursts, as a busy server's event loop leaves, so that on a machine
    // loaded by other work the thread still gets its turns (a writer that never yields outruns
    // any checkpointer there, and the test would measure the machine's load).
    let largestWal = 0;
    const until = Date.now() + 1500;
    while (Date.now() < until) {
      for (let i = 0; i < 20; i += 1) insert.run('y'.repeat(1000));
      largestWal = Math.max(largestWal, statSync(`${path}-wal`).size);
      await new Promise((resolve) => setTimeout(resolve, 1));
    }
    const rows = (db.prepare('SELECT count(*) AS n FROM t').get() as { n: number }).n;
    await checkpointer!.stop();
    db.close();
    // Each row is about a page: far more pages were written than the WAL ever held.
    expect(rows).toBeGreaterThan(2000);
    expect(largestWal).toBeLessThan(rows * 4096 * 0.5);
  });

  it('checkpoints on its own thread while the writer commits, and hands checkpoints back on stop', async () => {
    expect(existsSync(built)).toBe(true);
    const { startCheckpointer, path, db } = await builtWithDatabase('clawmesh.db');
    const errors: string[] = [];
    const checkpointer = startCheckpointer(db, path, { everyMs: 20, onError: (m) => errors.push(m) });
    expect(checkpointer).toBeDefined();
    expect(db.pragma('wal_autocheckpoint', { simple: true })).toBe(0);

    const insert = db.prepare('INSERT INTO t (body) VALUES (?)');
    for (let i = 0; i < 3000; i += 1) insert.run('x'.repeat(500));
    // Far more than the 1000 pages at which the writer would have checkpointed itself: the
    // thread copies them all.
    await vi.waitFor(
      () => {
        const last = checkpointer!.last;
        expect(last?.walPages).toBeGreaterThan(300);
        expect(last?.checkpointed).toBe(last?.walPages);
      },
      { timeout: 5000, interval: 20 },
    );
    await checkpointer!.stop();
    expect(db.pragma('wal_autocheckpoint', { simple: true })).toBe(1000);
    expect(errors).toEqual([]);

    // The data is all there, from another connection reading the database file.
    const reader = openSqlite(path);
    expect(reader.prepare('SELECT count(*) AS n FROM t').get()).toEqual({ n: 3000 });
    reader.close();
    db.close();
    expect(existsSync(`${path}-wal`)).toBe(false);
  });
});
