import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { describeConversationStore, describeDedupeStore } from '../src/store/conformance.ts';

// The thread's entry is compiled JavaScript, so this suite runs the built stores (`npm test` builds first).
const built = new URL('../dist/src/store/sqlite-thread/client.js', import.meta.url).href;
const { createThreadedSqliteStores } = (await import(
  built
)) as typeof import('../src/store/sqlite-thread/client.ts');

const dir = mkdtempSync(join(tmpdir(), 'clawmesh-thread-'));
let n = 0;
const open = () => createThreadedSqliteStores(join(dir, `store-${n++}.db`));

describeConversationStore('sqlite (worker thread)', () => open().conversations);
describeDedupeStore('sqlite (worker thread)', () => open().dedupe);

describe('sqlite stores in a worker thread', () => {
  it('finishes the writes made before close, and keeps them on disk', async () => {
    const path = join(dir, 'durable.db');
    const first = createThreadedSqliteStores(path);
    await first.conversations.ensure({ id: 'c1', agentId: 'a', channel: 'api', peer: 'u' });
    const writes = Array.from({ length: 20 }, (_, i) =>
      first.conversations.append('c1', [{ role: 'user', content: `m${i}` }]),
    );
    const closed = first.close();
    await Promise.all(writes);
    await closed;
    const second = createThreadedSqliteStores(path);
    expect((await second.conversations.messages('c1')).map((m) => m.content)).toEqual(
      Array.from({ length: 20 }, (_, i) => `m${i}`),
    );
    await second.close();
  });

  it('answers UNAVAILABLE, not a crash, when the database cannot be opened', async () => {
    const notADirectory = join(dir, 'a-file');
    writeFileSync(notADirectory, 'x');
    const stores = createThreadedSqliteStores(join(notADirectory, 'clawmesh.db'));
    await expect(stores.conversations.ping()).rejects.toMatchObject({ code: 'UNAVAILABLE' });
    await stores.close();
  });

  it('rejects calls after close with UNAVAILABLE', async () => {
    const stores = open();
    await stores.close();
    await expect(stores.conversations.get('x')).rejects.toMatchObject({ code: 'UNAVAILABLE' });
  });
});
