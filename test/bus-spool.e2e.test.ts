import { randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createClient } from 'redis';
import { afterEach, describe, expect, it } from 'vitest';
import { startTcpProxy, waitFor } from '../src/bus/conformance.ts';
import { type CliProcess, spawnCli } from './support/process.ts';

const REDIS = new URL(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379');
const cleanups: Array<() => Promise<unknown> | unknown> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

const lines = (path: string) =>
  existsSync(path)
    ? readFileSync(path, 'utf8')
        .split('\n')
        .filter((line) => line !== '')
        .map((line) => JSON.parse(line) as { type: string; data: Record<string, unknown> })
    : [];

async function start(dir: string, env: Record<string, string>): Promise<{ cli: CliProcess; url: string }> {
  const cli = spawnCli(['start'], { cwd: dir, env: { PORT: '0', ...env } });
  cleanups.push(() => cli.child.kill('SIGKILL'));
  const listening = await cli.waitForLog(/Clawmesh listening/, 20_000);
  return { cli, url: String(listening.url) };
}

describe('clawmesh start with a Redis Streams bus that goes away', () => {
  it('keeps the events of turns answered while Redis was unreachable through a SIGTERM, and the next start delivers them', async () => {
    const proxy = await startTcpProxy(REDIS.hostname, Number(REDIS.port || 6379));
    cleanups.push(() => proxy.close());
    const prefix = `clawmesh-test-spool-${randomUUID().slice(0, 8)}:`;
    cleanups.push(async () => {
      const client = createClient({ url: REDIS.toString() });
      await client.connect();
      const keys: string[] = [];
      for await (const batch of client.scanIterator({ MATCH: `${prefix}*` })) keys.push(...batch);
      if (keys.length > 0) await client.del(keys);
      await client.close();
    });
    const dir = mkdtempSync(join(tmpdir(), 'clawmesh-spool-e2e-'));
    const env = {
      CLAWMESH_BUS: 'redis',
      REDIS_URL: `redis://${proxy.address}`,
      CLAWMESH_REDIS__KEY_PREFIX: prefix,
    };
    const first = await start(dir, env);

    proxy.cut();
    const texts = ['first while away', 'second while away', 'third while away'];
    for (const [n, text] of texts.entries()) {
      const res = await fetch(`${first.url}/v1/messages`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ userId: `spool-${n}`, text }),
      });
      expect(res.status).toBe(200); // publishing never fails a turn
    }
    const spool = join(dir, 'data', 'spool', 'clawmesh.jsonl');
    await waitFor(
      () => lines(spool).filter((e) => e.type === 'message.received').length === texts.length,
      15_000,
      'the events in the spool',
    );
    first.cli.child.kill('SIGTERM');
    const kept = await first.cli.waitForLog(/kept in the spool/, 20_000);
    expect(kept.path).toBe(spool);
    expect(await first.cli.exited).toBe(0);
    const audit = join(dir, 'data', 'audit.jsonl');
    expect(lines(audit).filter((e) => e.type === 'message.received')).toHaveLength(0);

    proxy.restore();
    const second = await start(dir, env);
    await second.cli.waitForLog(/sending the events an earlier process kept in the spool/);
    await waitFor(
      () => lines(audit).filter((e) => e.type === 'message.received').length === texts.length,
      15_000,
      'the kept events in the audit file',
    );
    expect(
      lines(audit)
        .filter((e) => e.type === 'message.received')
        .map((e) => e.data.userId)
        .sort(),
    ).toEqual(['spool-0', 'spool-1', 'spool-2']);
    // Every event of those turns, not only the first: the replies too.
    expect(lines(audit).filter((e) => e.type === 'response.generated')).toHaveLength(texts.length);
    await waitFor(() => lines(spool).length === 0, 5000, 'the spool to be emptied');
    second.cli.child.kill('SIGTERM');
    expect(await second.cli.exited).toBe(0);
    expect(existsSync(spool)).toBe(false);
  });
});
